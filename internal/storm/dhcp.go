package storm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// relay speaks DHCP for every simulated machine behind one link, as a relay
// agent does (giaddr set, replies unicast to its port 67): the simulator
// has one address per link, not one interface per machine, and a relayed
// exchange is what a server in a datacenter sees anyway.
type relay struct {
	conn   *net.UDPConn
	giaddr netip.Addr
	server netip.AddrPort
	w      *waiters
	// resent counts retransmitted packets (the storm's DHCP retries).
	resent *atomic.Int64
}

// waiters routes replies to exchanges by transaction id. The relays of
// one storm share it: with Config.RelayAll a machine's packets go out on
// every link and the answer may come back on any.
type waiters struct {
	mu sync.Mutex
	m  map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4
}

func newRelay(giaddr, server netip.Addr, w *waiters, resent *atomic.Int64) (*relay, error) {
	conn, err := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(giaddr, 67)))
	if err != nil {
		return nil, fmt.Errorf("relay on %s:67: %w", giaddr, err)
	}
	// Replies for thousands of machines arrive in bursts: the default
	// buffer dropped them, and the storm measured its own losses.
	_ = conn.SetReadBuffer(4 << 20)
	r := &relay{conn: conn, giaddr: giaddr, server: netip.AddrPortFrom(server, 67), w: w, resent: resent}
	go r.read()
	return r, nil
}

func (r *relay) close() { r.conn.Close() }

// read hands each reply to the exchange waiting for its transaction id;
// anything else (late duplicates, garbage) is dropped.
func (r *relay) read() {
	buf := make([]byte, 2048)
	for {
		n, _, err := r.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p, err := dhcpv4.FromBytes(append([]byte(nil), buf[:n]...))
		if err != nil || p.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		r.w.mu.Lock()
		ch := r.w.m[p.TransactionID]
		r.w.mu.Unlock()
		if ch != nil {
			select {
			case ch <- p:
			default:
			}
		}
	}
}

// lease is what a machine learnt from its DHCP exchange.
type lease struct {
	addr     netip.Addr
	next     netip.Addr // siaddr: the TFTP server
	server   netip.Addr // the server identifier of the ACK: who answered
	bootFile string
	attempts int
}

// pxeOptions make a request look like a BIOS PXE ROM's (arch 0, UNDI 2.1),
// which is what decides that the server answers with a loader.
func pxeOptions(mac net.HardwareAddr) []dhcpv4.Modifier {
	guid := make([]byte, 17)
	copy(guid[11:], mac)
	return []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientNetworkInterfaceIdentifier, []byte{1, 2, 1})),
		dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, guid)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionSubnetMask, dhcpv4.OptionRouter, dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName),
	}
}

// relays are the links one machine's DHCP goes out on: one relay, or
// every one when the relay agent forwards to all the servers (as one with
// two helper addresses does). The first OFFER wins, as with any client.
type relays []*relay

// dora gets mac a lease: DISCOVER, OFFER, REQUEST, ACK, retransmitting
// after 1, 2, 4, 4... seconds as PXE ROMs do, and starting over after a
// NAK or a server that stopped answering, until ctx ends.
func (rs relays) dora(ctx context.Context, mac net.HardwareAddr) (lease, error) {
	w := rs[0].w
	var last error
	for attempt := 1; ctx.Err() == nil; attempt++ {
		var xid dhcpv4.TransactionID
		rand.Read(xid[:])
		ch := make(chan *dhcpv4.DHCPv4, 4*len(rs))
		w.mu.Lock()
		w.m[xid] = ch
		w.mu.Unlock()
		l, err := rs.exchange(ctx, mac, xid, ch)
		w.mu.Lock()
		delete(w.m, xid)
		w.mu.Unlock()
		if err == nil {
			l.attempts = attempt
			return l, nil
		}
		last = err
	}
	return lease{}, fmt.Errorf("dhcp %s: %w (last: %v)", mac, ctx.Err(), last)
}

func (rs relays) exchange(ctx context.Context, mac net.HardwareAddr, xid dhcpv4.TransactionID, ch chan *dhcpv4.DHCPv4) (lease, error) {
	mods := append([]dhcpv4.Modifier{dhcpv4.WithTransactionID(xid), dhcpv4.WithRelay(rs[0].giaddr.AsSlice())}, pxeOptions(mac)...)
	disc, err := dhcpv4.NewDiscovery(mac, mods...)
	if err != nil {
		return lease{}, err
	}
	offer, err := rs.send(ctx, disc, ch, dhcpv4.MessageTypeOffer)
	if err != nil {
		return lease{}, fmt.Errorf("no OFFER: %w", err)
	}
	mods = append(mods, dhcpv4.WithHwAddr(mac), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(offer.ServerIdentifier())))
	req, err := dhcpv4.New(mods...)
	if err != nil {
		return lease{}, err
	}
	ack, err := rs.send(ctx, req, ch, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if err != nil {
		return lease{}, fmt.Errorf("no ACK: %w", err)
	}
	if ack.MessageType() == dhcpv4.MessageTypeNak {
		return lease{}, fmt.Errorf("NAK: %s", ack.Message())
	}
	l := lease{bootFile: ack.BootFileNameOption()}
	if l.bootFile == "" {
		l.bootFile = ack.BootFileName
	}
	var ok bool
	if l.addr, ok = netip.AddrFromSlice(ack.YourIPAddr.To4()); !ok || l.addr.IsUnspecified() {
		return lease{}, errors.New("ACK without an address")
	}
	l.server, _ = netip.AddrFromSlice(ack.ServerIdentifier().To4())
	if l.next, ok = netip.AddrFromSlice(ack.ServerIPAddr.To4()); !ok || l.next.IsUnspecified() {
		l.next = l.server
	}
	return l, nil
}

// send transmits p on every relay (each with its own giaddr) until a
// reply of one of the wanted types arrives, waiting 1, 2, 4, 4 seconds
// between copies (4 tries).
func (rs relays) send(ctx context.Context, p *dhcpv4.DHCPv4, ch chan *dhcpv4.DHCPv4, want ...dhcpv4.MessageType) (*dhcpv4.DHCPv4, error) {
	wait := time.Second
	for try := 0; try < 4; try++ {
		if try > 0 {
			rs[0].resent.Add(1)
		}
		for _, r := range rs {
			p.GatewayIPAddr = r.giaddr.AsSlice()
			if _, err := r.conn.WriteToUDPAddrPort(p.ToBytes(), r.server); err != nil {
				return nil, err
			}
		}
		t := time.NewTimer(wait)
	recv:
		for {
			select {
			case reply := <-ch:
				for _, w := range want {
					if reply.MessageType() == w {
						t.Stop()
						return reply, nil
					}
				}
			case <-t.C:
				break recv
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			}
		}
		wait = min(2*wait, 4*time.Second)
	}
	return nil, errors.New("timed out")
}
