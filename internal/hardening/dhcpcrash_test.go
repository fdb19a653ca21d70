package hardening

import (
	"context"
	mrand "math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/store"
)

// doraRelay runs whole DHCP exchanges as a relay agent: DISCOVER, then a
// REQUEST for every OFFER, and it remembers every ACK it receives, which
// is what the clients were promised.
type doraRelay struct {
	conn *net.UDPConn
	mu   sync.Mutex
	acks map[netip.Addr][]string // address -> MACs it was ACKed to
	done chan struct{}
}

func (d *doraRelay) run() {
	go func() {
		defer close(d.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := d.conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			p, err := dhcpv4.FromBytes(buf[:n])
			if err != nil {
				continue
			}
			switch p.MessageType() {
			case dhcpv4.MessageTypeOffer:
				req, err := dhcpv4.NewRequestFromOffer(p, dhcpv4.WithGatewayIP(net.IPv4(198, 18, 0, 2)))
				if err == nil {
					d.conn.WriteToUDP(req.ToBytes(), server67)
				}
			case dhcpv4.MessageTypeAck:
				a, ok := netip.AddrFromSlice(p.YourIPAddr.To4())
				if !ok {
					continue
				}
				d.mu.Lock()
				d.acks[a] = append(d.acks[a], p.ClientHWAddr.String())
				d.mu.Unlock()
			}
		}
	}()
}

// TestKillDuringDHCPLoad kills kickstand with SIGKILL at random moments of
// a stream of DHCP exchanges (a Go relay agent doing whole DORAs, about
// 600 a second, under the rate limit) and restarts it each time. The
// store must then open cleanly, hold every lease a client was ACKed, with
// that client's MAC, and no address may have been ACKed to two MACs.
// internal/dhcp4's TestKill9KeepsAckedLeases checks the same promise from
// a packet capture of perfdhcp with one kill; this one kills repeatedly at
// random points, through the relay path.
func TestKillDuringDHCPLoad(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), budget(100*time.Second))
	defer cancel()
	d := startDHCPLab(t, ctx, "hdkill")
	kills, duration := 3, 12*time.Second
	if stress() {
		kills, duration = 20, 90*time.Second
	}
	pc, err := d.lab.ListenPacket("cli", "udp4", "198.18.0.2:67")
	must(t, err)
	dora := &doraRelay{conn: pc.(*net.UDPConn), acks: map[netip.Addr][]string{}, done: make(chan struct{})}
	dora.conn.SetWriteBuffer(4 << 20)
	dora.run()
	defer func() { dora.conn.Close(); <-dora.done }()

	// Kill points, at random, sorted.
	var at []time.Duration
	for i := 0; i < kills; i++ {
		at = append(at, time.Duration(mrand.Int64N(int64(duration))))
	}
	slices.Sort(at)
	t.Logf("kill -9 at %v", at)

	began := time.Now()
	stop := make(chan struct{})
	var sent int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				for i := 0; i < 6; i++ {
					p, err := dhcpv4.NewDiscovery(randomMAC(), dhcpv4.WithGatewayIP(net.IPv4(198, 18, 0, 2)))
					if err == nil {
						dora.conn.WriteToUDP(p.ToBytes(), server67)
						sent++
					}
				}
			}
		}
	}()
	srv := d.srv
	for _, k := range at {
		time.Sleep(time.Until(began.Add(k)))
		srv.kill()
		srv = start(t, d.lab.Cmd(ctx, "srv", d.bin, "serve", "--config", d.fx.cfg), "DHCPv4 listening")
	}
	time.Sleep(time.Until(began.Add(duration)))
	close(stop)
	wg.Wait()
	time.Sleep(time.Second) // the last ACKs
	srv.kill()

	integrity(t, d.fx.data)
	st := openStore(t, ctx, d.fx.data)
	defer st.Close()
	leases, err := st.Leases(ctx, 4)
	must(t, err)
	stored := map[netip.Addr]store.Lease{}
	bound := map[string]int{}
	for _, l := range leases {
		stored[l.Addr] = l
		if l.State == store.LeaseBound {
			bound[l.MAC]++
		}
	}
	dora.mu.Lock()
	defer dora.mu.Unlock()
	lost, acked := 0, 0
	for a, macs := range dora.acks {
		for _, m := range macs[1:] {
			if m != macs[0] {
				t.Errorf("%v was ACKed to %s and to %s", a, macs[0], m)
			}
		}
		acked++
		l, ok := stored[a]
		if !ok || l.MAC != macs[0] || l.State != store.LeaseBound {
			lost++
			if lost <= 10 {
				t.Errorf("ACK of %v to %s is not in the store (row %+v)", a, macs[0], l)
			}
		}
	}
	for mac, n := range bound {
		if n > 1 {
			t.Errorf("%s holds %d bound leases", mac, n)
		}
	}
	t.Logf("%d DISCOVERs sent in %s across %d kills: %d addresses ACKed, %d lease rows stored, %d ACKed leases lost", sent, duration, kills, acked, len(leases), lost)
	if acked < 1000 {
		t.Errorf("only %d ACKs: too few to test anything", acked)
	}
}
