package storm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// TFTP opcodes (RFC 1350, 2347).
const (
	opRRQ   = 1
	opDATA  = 3
	opACK   = 4
	opERROR = 5
	opOACK  = 6
)

// errBusy is a server that refused the transfer for now (kickstand's
// "server busy" at its transfer limit): a PXE ROM waits and asks again.
var errBusy = errors.New("tftp: server busy")

// tftpPacket is a parsed server packet.
type tftpPacket struct {
	op      uint16
	block   uint16
	data    []byte            // DATA payload
	options map[string]string // OACK
	code    uint16            // ERROR
	msg     string            // ERROR
}

// parseTFTP parses a packet a server sent to a client. It is the input the
// simulator takes from the server under test, so it never trusts lengths.
func parseTFTP(b []byte) (tftpPacket, error) {
	if len(b) < 2 {
		return tftpPacket{}, fmt.Errorf("tftp: %d-byte packet", len(b))
	}
	p := tftpPacket{op: binary.BigEndian.Uint16(b)}
	switch p.op {
	case opDATA:
		if len(b) < 4 {
			return p, errors.New("tftp: short DATA")
		}
		p.block, p.data = binary.BigEndian.Uint16(b[2:]), b[4:]
	case opERROR:
		if len(b) < 4 {
			return p, errors.New("tftp: short ERROR")
		}
		p.code = binary.BigEndian.Uint16(b[2:])
		p.msg = string(bytes.TrimRight(b[4:], "\x00"))
	case opOACK:
		fields := bytes.Split(b[2:], []byte{0})
		if len(fields) > 0 && len(fields[len(fields)-1]) == 0 {
			fields = fields[:len(fields)-1]
		}
		if len(fields)%2 != 0 {
			return p, errors.New("tftp: OACK with an option but no value")
		}
		p.options = map[string]string{}
		for i := 0; i < len(fields); i += 2 {
			p.options[string(bytes.ToLower(fields[i]))] = string(fields[i+1])
		}
	default:
		return p, fmt.Errorf("tftp: unexpected opcode %d", p.op)
	}
	return p, nil
}

func rrq(name string, blksize int) []byte {
	b := []byte{0, opRRQ}
	for _, s := range []string{name, "octet", "blksize", strconv.Itoa(blksize), "tsize", "0"} {
		b = append(append(b, s...), 0)
	}
	return b
}

func ack(block uint16) []byte { return []byte{0, opACK, byte(block >> 8), byte(block)} }

// tftpGet reads name from server:69 as a PXE ROM does (lock-step, the
// blksize it asks for, the tsize probe folded into the same request) and
// returns the number of bytes received. src is the local address to use.
// Lost packets are retransmitted after retry, at most 5 times in a row;
// until the server first answers, the wait doubles each time (1, 2, 4, 8,
// 16 s for a retry of 1 s), as a PXE ROM's TFTP open does.
func tftpGet(ctx context.Context, src, server netip.Addr, name string, blksize int, retry time.Duration) (int64, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0)))
	if err != nil {
		return 0, fmt.Errorf("tftp %s: %w", name, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	dst := netip.AddrPortFrom(server, 69)
	last := rrq(name, blksize)
	if _, err := conn.WriteToUDPAddrPort(last, dst); err != nil {
		return 0, fmt.Errorf("tftp %s: %w", name, err)
	}
	var peer netip.AddrPort // the server's transfer port, learnt from its first reply
	size, want := int64(0), uint16(1)
	blk := 512
	buf := make([]byte, 65536)
	tries := 0
	wait := retry
	for {
		conn.SetReadDeadline(time.Now().Add(wait))
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil {
				return size, fmt.Errorf("tftp %s: %w", name, ctx.Err())
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && tries < 5 {
				tries++
				to := dst
				if peer.IsValid() {
					to = peer
				} else {
					wait *= 2
				}
				conn.WriteToUDPAddrPort(last, to)
				continue
			}
			return size, fmt.Errorf("tftp %s: no answer after %d retransmissions: %w", name, tries, err)
		}
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		if from.Addr() != server || (peer.IsValid() && from != peer) {
			continue // not our transfer (RFC 1350: ignore, do not abort it)
		}
		p, err := parseTFTP(buf[:n])
		if err != nil {
			return size, fmt.Errorf("tftp %s: %w", name, err)
		}
		peer, wait = from, retry
		switch p.op {
		case opERROR:
			if p.msg == "server busy" {
				return size, errBusy
			}
			return size, fmt.Errorf("tftp %s: server error %d: %s", name, p.code, p.msg)
		case opOACK:
			if want != 1 || size != 0 {
				continue
			}
			if v, ok := p.options["blksize"]; ok {
				b, err := strconv.Atoi(v)
				if err != nil || b < 8 || b > blksize {
					return 0, fmt.Errorf("tftp %s: server chose blksize %q, asked for %d", name, v, blksize)
				}
				blk = b
			}
			last = ack(0)
		case opDATA:
			if p.block != want {
				// A duplicate of the previous block: our ACK was lost.
				if p.block == want-1 {
					conn.WriteToUDPAddrPort(last, peer)
				}
				continue
			}
			size += int64(len(p.data))
			last = ack(want)
			want++
			tries = 0
			if len(p.data) < blk {
				conn.WriteToUDPAddrPort(last, peer)
				return size, nil
			}
		}
		tries = 0
		if _, err := conn.WriteToUDPAddrPort(last, peer); err != nil {
			return size, fmt.Errorf("tftp %s: %w", name, err)
		}
	}
}
