package scaletest

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
)

// relayGen is a load generator that behaves like a DHCP relay agent with
// many clients behind it: it sends each client's DISCOVER and REQUEST from
// its own address (giaddr) to the server's port 67 and gets the replies
// back on its port 67, unicast. That needs no raw sockets and no address
// per client, and it is what real relays (dhcrelay, a ToR switch) do.
type relayGen struct {
	conn   net.PacketConn
	server *net.UDPAddr
	giaddr net.IP

	mu      sync.Mutex
	waiting map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4

	sent, timeouts, naks atomic.Int64
}

// genAck is one client's outcome.
type genAck struct {
	MAC      string
	Addr     netip.Addr
	Server   netip.Addr // server identifier of the ACK
	At       time.Time  // when the ACK arrived
	Attempts int        // DORA attempts it took
}

func newRelayGen(conn net.PacketConn, server netip.Addr, giaddr netip.Addr) *relayGen {
	g := &relayGen{conn: conn, server: &net.UDPAddr{IP: server.AsSlice(), Port: 67}, giaddr: giaddr.AsSlice(),
		waiting: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}}
	go g.read()
	return g
}

// read dispatches replies by transaction id until the socket is closed.
func (g *relayGen) read() {
	buf := make([]byte, 1500)
	for {
		n, _, err := g.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		p, err := dhcpv4.FromBytes(append([]byte(nil), buf[:n]...))
		if err != nil || p.OpCode != dhcpv4.OpcodeBootReply {
			continue
		}
		g.mu.Lock()
		ch := g.waiting[p.TransactionID]
		g.mu.Unlock()
		if ch != nil {
			select {
			case ch <- p:
			default:
			}
		}
	}
}

// exchange sends p and waits up to timeout for a reply of one of the
// wanted types with p's transaction id.
func (g *relayGen) exchange(ctx context.Context, p *dhcpv4.DHCPv4, ch chan *dhcpv4.DHCPv4, timeout time.Duration, want ...dhcpv4.MessageType) *dhcpv4.DHCPv4 {
	if _, err := g.conn.WriteTo(p.ToBytes(), g.server); err != nil {
		return nil
	}
	g.sent.Add(1)
	t := time.NewTimer(timeout)
	defer t.Stop()
	for {
		select {
		case r := <-ch:
			for _, w := range want {
				if r.MessageType() == w {
					return r
				}
			}
		case <-t.C:
			g.timeouts.Add(1)
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// lease runs DORA for one client until it is ACKed, retrying (with a new
// transaction id, as a real client does) after a timeout or a NAK, at most
// maxAttempts times.
func (g *relayGen) lease(ctx context.Context, mac net.HardwareAddr, maxAttempts int, step time.Duration) (genAck, error) {
	for attempt := 1; attempt <= maxAttempts && ctx.Err() == nil; attempt++ {
		var xid dhcpv4.TransactionID
		rand.Read(xid[:])
		ch := make(chan *dhcpv4.DHCPv4, 4)
		g.mu.Lock()
		g.waiting[xid] = ch
		g.mu.Unlock()
		ack, ok := g.dora(ctx, mac, xid, ch, step)
		g.mu.Lock()
		delete(g.waiting, xid)
		g.mu.Unlock()
		if ok {
			ack.Attempts = attempt
			return ack, nil
		}
		select { // back off a little, as clients do
		case <-time.After(time.Duration(min(attempt, 5)) * 100 * time.Millisecond):
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		return genAck{}, fmt.Errorf("client %s: %w", mac, ctx.Err())
	}
	return genAck{}, fmt.Errorf("client %s: no lease after %d attempts", mac, maxAttempts)
}

func (g *relayGen) dora(ctx context.Context, mac net.HardwareAddr, xid dhcpv4.TransactionID, ch chan *dhcpv4.DHCPv4, step time.Duration) (genAck, bool) {
	disc, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithTransactionID(xid), dhcpv4.WithRelay(g.giaddr))
	if err != nil {
		return genAck{}, false
	}
	offer := g.exchange(ctx, disc, ch, step, dhcpv4.MessageTypeOffer)
	if offer == nil {
		return genAck{}, false
	}
	req, err := dhcpv4.New(dhcpv4.WithTransactionID(xid), dhcpv4.WithHwAddr(mac),
		dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(offer.YourIPAddr)),
		dhcpv4.WithOption(dhcpv4.OptServerIdentifier(offer.ServerIdentifier())),
		dhcpv4.WithRelay(g.giaddr))
	if err != nil {
		return genAck{}, false
	}
	r := g.exchange(ctx, req, ch, step, dhcpv4.MessageTypeAck, dhcpv4.MessageTypeNak)
	if r == nil {
		return genAck{}, false
	}
	if r.MessageType() == dhcpv4.MessageTypeNak {
		g.naks.Add(1)
		return genAck{}, false
	}
	addr, ok := netip.AddrFromSlice(r.YourIPAddr.To4())
	sid, _ := netip.AddrFromSlice(r.ServerIdentifier().To4())
	if !ok || !addr.IsValid() || addr.IsUnspecified() {
		return genAck{}, false
	}
	return genAck{MAC: mac.String(), Addr: addr, Server: sid, At: time.Now()}, true
}

// run leases every MAC, with at most conc exchanges in flight and, when
// rate > 0, no more than rate new clients per second. onAck is called for
// each ACK as it arrives.
func (g *relayGen) run(ctx context.Context, macs []net.HardwareAddr, conc int, rate float64, onAck func(genAck)) ([]genAck, []error) {
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	acks := make([]genAck, len(macs))
	errs := make([]error, len(macs))
	start := time.Now()
	for i, mac := range macs {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))); d > 0 {
				time.Sleep(d)
			}
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			a, err := g.lease(ctx, mac, 60, time.Second)
			acks[i], errs[i] = a, err
			if err == nil && onAck != nil {
				onAck(a)
			}
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	return acks, failed
}

func macFor(server, i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x6b, 0x73, byte(server), byte(i >> 8), byte(i)}
}

var errNoReady = errors.New("server did not become ready")
