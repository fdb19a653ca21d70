package dhcpengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/store"
)

// TestPools are the pools the tests allocate from, one per family (the
// external tests use them too).
var TestPools = []struct {
	Family      int
	First, Last netip.Addr
}{
	{4, netip.MustParseAddr("198.18.1.0"), netip.MustParseAddr("198.18.255.255")},
	{6, netip.MustParseAddr("2001:db8:1::"), netip.MustParseAddr("2001:db8:1::ffff:ffff")},
}

func noReservations(netip.Addr, string) bool { return false }

func TestOfferOrder(t *testing.T) {
	for _, fam := range TestPools {
		t.Run(fmt.Sprint(fam.Family), func(t *testing.T) {
			now := time.Now()
			reserved := fam.First.Next().Next()
			m := newMemLeases(fam.Family, 100, func(a netip.Addr, host string) bool { return a == reserved && host != "r" })
			m.loaded = true
			op := func(mac, cid string, iaid uint32) *store.LeaseOp {
				return &store.LeaseOp{Kind: store.LeaseBind, MAC: mac, ClientID: cid, IAID: iaid, PoolFirst: fam.First, PoolLast: fam.Last, Now: now, Until: now.Add(time.Hour)}
			}
			hold := now.Add(time.Minute)
			a := m.offer(op("52:54:00:00:00:01", "01", 1), hold)
			b := m.offer(op("52:54:00:00:00:02", "02", 1), hold)
			c := m.offer(op("52:54:00:00:00:03", "03", 1), hold)
			if a.Err != nil || b.Err != nil || c.Err != nil || a.Lease.Addr != fam.First || b.Lease.Addr != fam.First.Next() || c.Lease.Addr == reserved {
				t.Fatalf("first offers: %v %v %v (reserved %v)", a, b, c, reserved)
			}
			// The same client again gets the same address, by its id or by
			// its MAC under a new id (the next boot stage).
			if r := m.offer(op("52:54:00:00:00:01", "01", 1), hold); r.Lease.Addr != a.Lease.Addr {
				t.Errorf("same client: %v, want %v", r.Lease.Addr, a.Lease.Addr)
			}
			// The next boot stage: the same NIC under a new id gets the
			// same address; that client's second IA gets another.
			if r := m.offer(op("52:54:00:00:00:01", "99", 7), hold); r.Lease.Addr != a.Lease.Addr {
				t.Errorf("same MAC, new id: %v, want %v", r.Lease.Addr, a.Lease.Addr)
			}
			if r := m.offer(op("52:54:00:00:00:01", "99", 8), hold); r.Lease.Addr == a.Lease.Addr {
				t.Errorf("second IA got the first one's %v", r.Lease.Addr)
			}
			// A hint that is free is honoured; one held by another is not.
			free := c.Lease.Addr.Next().Next().Next()
			h := op("52:54:00:00:00:04", "04", 1)
			h.Addr = free
			if r := m.offer(h, hold); r.Lease.Addr != free {
				t.Errorf("free hint: %v, want %v", r.Lease.Addr, free)
			}
			h = op("52:54:00:00:00:05", "05", 1)
			h.Addr = a.Lease.Addr
			if r := m.offer(h, hold); r.Err != nil || r.Lease.Addr == a.Lease.Addr {
				t.Errorf("hint held by another: %v", r)
			}
			// A reservation: that address, for its host only.
			rsv := op("52:54:00:00:00:06", "06", 1)
			rsv.Addr, rsv.Reserved, rsv.Host = reserved, true, "r"
			if r := m.offer(rsv, hold); r.Err != nil || r.Lease.Addr != reserved {
				t.Errorf("reservation: %v", r)
			}
			rsv.MAC, rsv.ClientID, rsv.Host = "52:54:00:00:00:07", "07", "other"
			if r := m.offer(rsv, hold); !errors.Is(r.Err, store.ErrAddressTaken) {
				t.Errorf("another host's claim on a held reservation: %v", r)
			}
		})
	}
}

func TestOfferExhaustionAndExpiry(t *testing.T) {
	for _, fam := range TestPools {
		t.Run(fmt.Sprint(fam.Family), func(t *testing.T) {
			now := time.Now()
			last := fam.First.Next().Next()
			m := newMemLeases(fam.Family, 100, noReservations)
			m.loaded = true
			op := func(i int, at time.Time) *store.LeaseOp {
				return &store.LeaseOp{Kind: store.LeaseBind, MAC: fmt.Sprintf("52:54:00:00:00:%02x", i), PoolFirst: fam.First, PoolLast: last, Now: at, Until: at.Add(time.Hour)}
			}
			for i := 0; i < 3; i++ {
				if r := m.offer(op(i, now), now.Add(time.Minute)); r.Err != nil {
					t.Fatalf("offer %d: %v", i, r.Err)
				}
			}
			if r := m.offer(op(3, now), now.Add(time.Minute)); !errors.Is(r.Err, store.ErrNoAddress) {
				t.Fatalf("full pool: %v", r)
			}
			later := now.Add(2 * time.Minute) // the offers' hold is over
			if r := m.offer(op(3, later), later.Add(time.Minute)); r.Err != nil {
				t.Fatalf("after the holds expired: %v", r)
			}
			// A declined address stays out until its quarantine ends.
			dec := op(3, later)
			dec.Kind, dec.Addr, dec.Until = store.LeaseDecline, fam.First, later.Add(10*time.Minute)
			m.applied(dec, store.LeaseResult{Lease: store.Lease{Addr: fam.First, State: store.LeaseDeclined, Expires: dec.Until}})
			for _, at := range []time.Time{later.Add(5 * time.Minute)} {
				o := op(4, at)
				o.PoolLast = fam.First
				if r := m.offer(o, at.Add(time.Minute)); !errors.Is(r.Err, store.ErrNoAddress) {
					t.Errorf("declined address offered during quarantine: %v", r)
				}
			}
		})
	}
}

// Past three quarters of the queue, packets that open an exchange are
// dropped and those that finish one still get in: a storm of DISCOVERs
// must not crowd out the REQUESTs that complete the exchanges begun.
func TestOverloadDropsOpeningPacketsFirst(t *testing.T) {
	e := &Engine{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	queue := make(chan *Packet, 8)
	conn := &script{}
	for _, d := range []string{"f", "f", "f", "f", "f", "o", "f", "o", "f", "f", "o"} {
		conn.data = append(conn.data, []byte(d))
	}
	e.read(openers{}, &Socket{Conn: conn}, queue)
	var got string
	for len(queue) > 0 {
		got += string((<-queue).Data)
	}
	// Five f and the first o get in (the queue held 5 of 8), and the next
	// f; at 7 of 8 the second o is dropped, one f fills the queue, and the
	// last f and o find it full.
	if got != "fffffoff" || e.dropped.Load() != 3 {
		t.Errorf("queued %q, dropped %d; want fffffoff, 3", got, e.dropped.Load())
	}
}

// openers says a packet "o" opens an exchange; nothing is rate limited.
type openers struct{}

func (openers) Peek(*Packet) (string, boot.Keys, bool) { return "", boot.Keys{}, false }
func (openers) Opens(p *Packet) bool                   { return string(p.Data) == "o" }
func (openers) Handle(context.Context, *Packet)        {}

// script is a socket that reads its datagrams, then is closed.
type script struct{ data [][]byte }

func (s *script) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	if len(s.data) == 0 {
		return 0, netip.AddrPort{}, net.ErrClosed
	}
	n := copy(b, s.data[0])
	s.data = s.data[1:]
	return n, netip.MustParseAddrPort("192.0.2.7:68"), nil
}

func (s *script) WriteToUDPAddrPort(b []byte, _ netip.AddrPort) (int, error) { return len(b), nil }
