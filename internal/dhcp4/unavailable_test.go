package dhcp4

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

// outage is a Fake whose lease calls fail with ErrUnavailable while down
// is set, as the PostgreSQL store's do while the database restarts.
type outage struct {
	*storetest.Fake
	down atomic.Bool
}

func (o *outage) CommitLeases(ctx context.Context, ops []store.LeaseOp) ([]store.LeaseResult, error) {
	if o.down.Load() {
		return nil, fmt.Errorf("commit: %w: connection refused", store.ErrUnavailable)
	}
	return o.Fake.CommitLeases(ctx, ops)
}

func (o *outage) Leases(ctx context.Context) ([]store.Lease, error) {
	if o.down.Load() {
		return nil, fmt.Errorf("list leases: %w: connection refused", store.ErrUnavailable)
	}
	return o.Fake.Leases(ctx)
}

// syncBuffer is a log sink the committer's goroutine may write to while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestStoreUnavailable(t *testing.T) {
	st := &outage{Fake: storetest.NewFake()}
	h := newHarness(t, st, "server")
	var logs syncBuffer
	c := h.s.committer()
	c.log = slog.New(slog.NewTextHandler(&logs, nil))

	const known = "52:54:00:00:00:51"
	ack := h.one(req(t, h.one(packet(t, known))))
	if ack.MessageType() != dhcpv4.MessageTypeAck {
		t.Fatalf("before the outage: %v", ack.MessageType())
	}
	addr := netip.MustParseAddr(ack.YourIPAddr.String())
	// The lease was ACKed 50 minutes ago: 10 minutes are left.
	c.mem.mu.Lock()
	c.mem.byNum[store.AddrNum(addr)].expires = time.Now().Add(10 * time.Minute)
	c.mem.mu.Unlock()

	st.down.Store(true)
	renew := packet(t, known, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest))
	renew.ClientIPAddr = ack.YourIPAddr
	for i := 0; i < 3; i++ {
		r := h.one(renew)
		if r.MessageType() != dhcpv4.MessageTypeAck || !r.YourIPAddr.Equal(ack.YourIPAddr) {
			t.Fatalf("renewal while down: %v %v, want ACK of %v", r.MessageType(), r.YourIPAddr, addr)
		}
		if lt := r.IPAddressLeaseTime(0); lt <= 0 || lt > 10*time.Minute {
			t.Errorf("renewal while down granted %v, want at most the 10m left", lt)
		}
	}
	// The known client rebooting gets its address offered again.
	if o := h.one(packet(t, known)); !o.YourIPAddr.Equal(ack.YourIPAddr) {
		t.Errorf("known client offered %v while down, want %v", o.YourIPAddr, addr)
	}
	// A new client gets nothing: no guess, no NAK.
	for _, mac := range []string{"52:54:00:00:00:52", "52:54:00:00:00:53"} {
		if out := h.do(packet(t, mac), serverPort); len(out) != 0 {
			t.Errorf("new client %s answered while the store is down: %v", mac, out[0].p.MessageType())
		}
	}
	initReboot := packet(t, "52:54:00:00:00:54", dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 150))))
	if out := h.do(initReboot, serverPort); len(out) != 0 {
		t.Errorf("unknown lease REQUEST answered while down: %v", out[0].p.MessageType())
	}
	s := h.s.Stats()
	if !s.StoreDown || s.Refused < 3 || s.FromMemory < 4 {
		t.Errorf("stats while down: %+v", s)
	}
	if n := strings.Count(logs.String(), "lease store unavailable"); n != 1 {
		t.Errorf("%d outage log lines for one outage, want 1:\n%s", n, logs.String())
	}

	st.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for h.s.Stats().StoreDown && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if h.s.Stats().StoreDown {
		t.Fatal("store back, but the server still says it is down")
	}
	if a := h.one(req(t, h.one(packet(t, "52:54:00:00:00:52")))); a.MessageType() != dhcpv4.MessageTypeAck {
		t.Errorf("new client after the outage: %v", a.MessageType())
	}
	if n := strings.Count(logs.String(), "lease store available again"); n != 1 {
		t.Errorf("%d recovery log lines, want 1:\n%s", n, logs.String())
	}
}

// TestTwoCommittersOneStore is two servers' in-memory offers over one
// store: they start from the same unused address, the store refuses the
// loser's bind, and the loser moves on; nobody gets an address twice.
func TestTwoCommittersOneStore(t *testing.T) {
	st := storetest.NewFake()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var cs [2]*committer
	for i := range cs {
		cs[i] = newCommitter(st, time.Millisecond, 64, 256)
		go cs[i].run(ctx)
	}
	first, last := netip.MustParseAddr("198.18.1.0"), netip.MustParseAddr("198.18.255.255")
	owner := map[netip.Addr]string{}
	naks := 0
	for i := 0; i < 200; i++ {
		mac := fmt.Sprintf("52:54:00:20:%02x:%02x", i/256, i%256)
		c := cs[i%2]
		got := false
		for attempt := 0; attempt < 5 && !got; attempt++ {
			now := time.Now()
			o, err := c.submit(ctx, store.LeaseOp{Kind: store.LeaseOffer, MAC: mac, PoolFirst: first, PoolLast: last, Now: now, Until: now.Add(30 * time.Second)})
			if err != nil || o.Err != nil {
				t.Fatalf("offer to %s: %v %v", mac, err, o.Err)
			}
			b, err := c.submit(ctx, store.LeaseOp{Kind: store.LeaseBind, MAC: mac, Addr: o.Lease.Addr, PoolFirst: first, PoolLast: last, Now: now, Until: now.Add(time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			if b.Err != nil {
				naks++
				continue
			}
			if prev, dup := owner[o.Lease.Addr]; dup {
				t.Fatalf("%v bound to %s and %s", o.Lease.Addr, prev, mac)
			}
			owner[o.Lease.Addr] = mac
			got = true
		}
		if !got {
			t.Fatalf("%s got no lease in 5 attempts", mac)
		}
	}
	t.Logf("200 clients over two servers, %d NAKs", naks)
	if naks == 0 {
		t.Error("no conflicts: the two servers did not start from the same address, so nothing was tested")
	}
	if naks > 20 {
		t.Errorf("%d NAKs: the loser does not move away from the winner's range", naks)
	}
}
