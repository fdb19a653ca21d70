package tftp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// rawClient speaks TFTP packet by packet, so tests can lose, repeat and
// reorder acknowledgements on purpose.
type rawClient struct {
	t      *testing.T
	conn   *net.UDPConn
	server netip.AddrPort // listen address
	peer   netip.AddrPort // the transfer's address, learnt from the first reply
}

type pkt struct {
	op    uint16
	block uint16 // DATA/ACK block, ERROR code
	data  []byte // DATA payload, ERROR message
	opts  map[string]string
	from  netip.AddrPort
}

func newRawClient(t *testing.T, server netip.AddrPort) *rawClient {
	t.Helper()
	network, laddr := "udp4", "127.0.0.1:0"
	if server.Addr().Is6() {
		network, laddr = "udp6", "[::1]:0"
	}
	c, err := net.ListenPacket(network, laddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawClient{t: t, conn: c.(*net.UDPConn), server: server}
}

func (c *rawClient) request(op uint16, name string, opts ...string) {
	c.t.Helper()
	r := request{op: op, filename: name, mode: "octet"}
	for i := 0; i+1 < len(opts); i += 2 {
		r.options = append(r.options, option{opts[i], opts[i+1]})
	}
	c.sendRaw(c.server, appendRequest(nil, r))
}

func (c *rawClient) rrq(name string, opts ...string) { c.t.Helper(); c.request(opRRQ, name, opts...) }

func (c *rawClient) sendRaw(to netip.AddrPort, b []byte) {
	c.t.Helper()
	if _, err := c.conn.WriteToUDPAddrPort(b, to); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) ack(block uint16) {
	c.t.Helper()
	b := binary.BigEndian.AppendUint16(nil, opACK)
	c.sendRaw(c.peer, binary.BigEndian.AppendUint16(b, block))
}

func (c *rawClient) sendError(code ErrorCode, msg string) {
	c.t.Helper()
	c.sendRaw(c.peer, appendError(nil, code, msg))
}

// recv returns the next packet; the generous timeout only bounds a broken
// test, it asserts nothing about speed.
func (c *rawClient) recv() pkt {
	c.t.Helper()
	p, err := c.tryRecv(20 * time.Second)
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	return p
}

func (c *rawClient) tryRecv(d time.Duration) (pkt, error) {
	buf := make([]byte, 70000)
	c.conn.SetReadDeadline(time.Now().Add(d))
	n, from, err := c.conn.ReadFromUDPAddrPort(buf)
	if err != nil {
		return pkt{}, err
	}
	if !c.peer.IsValid() {
		c.peer = from
	}
	b := buf[:n]
	if len(b) < 2 {
		return pkt{}, errors.New("short packet")
	}
	p := pkt{op: binary.BigEndian.Uint16(b), from: from}
	switch p.op {
	case opDATA, opACK, opERROR:
		if len(b) < 4 {
			return pkt{}, errors.New("short packet")
		}
		p.block = binary.BigEndian.Uint16(b[2:])
		p.data = append([]byte(nil), b[4:]...)
		if p.op == opERROR && len(p.data) > 0 && p.data[len(p.data)-1] == 0 {
			p.data = p.data[:len(p.data)-1]
		}
	case opOACK:
		p.opts = map[string]string{}
		fields := splitNUL(b[2:])
		for i := 0; i+1 < len(fields); i += 2 {
			p.opts[fields[i]] = fields[i+1]
		}
	}
	return p, nil
}

func splitNUL(b []byte) []string {
	var out []string
	start := 0
	for i, c := range b {
		if c == 0 {
			out = append(out, string(b[start:i]))
			start = i + 1
		}
	}
	return out
}

func (c *rawClient) expectData(block uint16) []byte {
	c.t.Helper()
	p := c.recv()
	if p.op != opDATA || p.block != block {
		c.t.Fatalf("got %s, want DATA %d", p, block)
	}
	return p.data
}

func (c *rawClient) expectError(code ErrorCode) pkt {
	c.t.Helper()
	p := c.recv()
	if p.op != opERROR || ErrorCode(p.block) != code {
		c.t.Fatalf("got %s, want ERROR %d", p, code)
	}
	return p
}

func (p pkt) String() string {
	switch p.op {
	case opDATA:
		return "DATA " + strconv.Itoa(int(p.block)) + " (" + strconv.Itoa(len(p.data)) + " bytes)"
	case opACK:
		return "ACK " + strconv.Itoa(int(p.block))
	case opERROR:
		return "ERROR " + strconv.Itoa(int(p.block)) + " " + strconv.Quote(string(p.data))
	case opOACK:
		return "OACK " + strconv.Quote(strconv.Itoa(len(p.opts))+" options")
	}
	return "opcode " + strconv.Itoa(int(p.op))
}

// fetchAll drives a whole lock-step or windowed transfer and returns the
// file, checking every block arrives in order.
func (c *rawClient) fetchAll(name string, blksize, window int) []byte {
	c.t.Helper()
	var opts []string
	if blksize != 0 {
		opts = append(opts, "blksize", strconv.Itoa(blksize))
	}
	if window != 0 {
		opts = append(opts, "windowsize", strconv.Itoa(window))
	}
	c.rrq(name, opts...)
	if blksize == 0 {
		blksize = 512
	}
	if window == 0 {
		window = 1
	}
	if len(opts) > 0 {
		p := c.recv()
		if p.op != opOACK {
			c.t.Fatalf("got %s, want OACK", p)
		}
		c.ack(0)
	}
	var out []byte
	for n := uint64(1); ; n++ {
		d := c.expectData(uint16(n))
		out = append(out, d...)
		if len(d) < blksize {
			c.ack(uint16(n))
			return out
		}
		if n%uint64(window) == 0 {
			c.ack(uint16(n))
		}
	}
}

// lockStep is a config with retransmission pushed far out, so any packet a
// test sees is a reaction to what the test sent, never to a timer.
func lockStep(cfg *Config) {
	cfg.InitialRetransmit = time.Hour
	cfg.MinRetransmit = time.Hour
	cfg.MaxRetransmit = time.Hour
	cfg.IdleTimeout = time.Hour
}
