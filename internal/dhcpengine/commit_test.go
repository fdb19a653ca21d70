package dhcpengine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

// TestTwoEnginesOneStore is two servers' in-memory choices over one store,
// for each family: they start from the same unused address, the store
// refuses the loser's bind, and the loser moves on; nobody gets an address
// twice, and a DHCPv6 bind (Assign) chooses again by itself.
func TestTwoEnginesOneStore(t *testing.T) {
	for _, fam := range dhcpengine.TestPools {
		t.Run(fmt.Sprint(fam.Family), func(t *testing.T) {
			st := storetest.NewFake()
			ctx := context.Background()
			var es [2]*dhcpengine.Engine
			for i := range es {
				es[i] = newEngine(t, dhcpengine.Options{Family: fam.Family, Store: st})
				t.Cleanup(es[i].Start(ctx))
			}
			owner := map[netip.Addr]string{}
			conflicts := 0
			for i := 0; i < 200; i++ {
				mac := fmt.Sprintf("52:54:00:20:%02x:%02x", i/256, i%256)
				e := es[i%2]
				now := time.Now()
				op := store.LeaseOp{Kind: store.LeaseBind, MAC: mac, ClientID: mac, PoolFirst: fam.First, PoolLast: fam.Last, Now: now, Until: now.Add(time.Hour)}
				var got store.LeaseResult
				if fam.Family == 6 {
					got = bind(t, e, op, true)
				} else {
					for attempt := 0; attempt < 5; attempt++ {
						o, err := e.Offer(ctx, op)
						if err != nil || o.Err != nil {
							t.Fatalf("offer to %s: %v %v", mac, err, o.Err)
						}
						op.Addr = o.Lease.Addr
						if got = bind(t, e, op, false); got.Err == nil {
							break
						}
						conflicts++ // a NAK: the client starts over
					}
				}
				if got.Err != nil {
					t.Fatalf("%s got no lease: %v", mac, got.Err)
				}
				if prev, dup := owner[got.Lease.Addr]; dup {
					t.Fatalf("%v bound to %s and %s", got.Lease.Addr, prev, mac)
				}
				owner[got.Lease.Addr] = mac
			}
			rows, _ := st.Leases(ctx, fam.Family)
			t.Logf("200 clients over two servers, %d NAKs, %d rows", conflicts, len(rows))
			if len(rows) < 200 {
				t.Errorf("%d rows for 200 clients", len(rows))
			}
			if conflicts > 20 {
				t.Errorf("%d conflicts: the loser does not move away from the winner's range", conflicts)
			}
		})
	}
}

type noBoot struct{}

func (noBoot) BootSpec(context.Context, boot.Facts) (boot.Plan, error)         { return boot.Plan{}, nil }
func (noBoot) Match(context.Context, boot.Keys) (*inventory.HostRecord, error) { return nil, nil }
func (noBoot) ReservedBy(netip.Addr) string                                    { return "" }

func newEngine(t *testing.T, o dhcpengine.Options) *dhcpengine.Engine {
	t.Helper()
	cfg := &inventory.Config{}
	o.Config = func() *inventory.Config { return cfg }
	o.Booter = noBoot{}
	e, err := dhcpengine.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// bind commits op through e and waits: by Commit (the address is op's),
// or, with choose, by Assign (the engine chooses it).
func bind(t *testing.T, e *dhcpengine.Engine, op store.LeaseOp, choose bool) store.LeaseResult {
	t.Helper()
	ch := make(chan []store.LeaseResult, 1)
	done := func(r []store.LeaseResult, err error) {
		if err != nil {
			t.Error(err)
		}
		ch <- r
	}
	if choose {
		e.Assign(context.Background(), nil, []store.LeaseOp{op}, done)
	} else {
		e.Commit(context.Background(), nil, []store.LeaseOp{op}, done)
	}
	r := <-ch
	if len(r) != 1 {
		t.Fatalf("%d results", len(r))
	}
	return r[0]
}

// TestStoreDown is the outage behaviour both families share, at the
// engine: a known client's renewal is answered from memory, a new client
// is refused, the outage is logged once, and the store's return is
// noticed without any traffic.
func TestStoreDown(t *testing.T) {
	for _, fam := range dhcpengine.TestPools {
		t.Run(fmt.Sprint(fam.Family), func(t *testing.T) {
			st := &enginetest.Outage{Fake: storetest.NewFake()}
			var logs enginetest.SyncBuffer
			e := newEngine(t, dhcpengine.Options{Family: fam.Family, Store: st, Log: slog.New(slog.NewTextHandler(&logs, nil))})
			t.Cleanup(e.Start(context.Background()))
			now := time.Now()
			op := store.LeaseOp{Kind: store.LeaseBind, MAC: "52:54:00:00:00:01", ClientID: "01", PoolFirst: fam.First, PoolLast: fam.Last, Now: now, Until: now.Add(time.Hour)}
			if r := bind(t, e, op, true); r.Err != nil {
				t.Fatal(r.Err)
			}
			st.Down.Store(true)
			renew := op
			renew.Now = now.Add(time.Minute)
			renew.Until = renew.Now.Add(time.Hour)
			for i := 0; i < 3; i++ {
				r := bind(t, e, renew, true)
				if r.Err != nil || !r.Lease.Expires.Equal(time.UnixMilli(op.Until.UnixMilli())) {
					t.Errorf("renewal while down: %+v, want the lease until %v", r, op.Until)
				}
			}
			stranger := op
			stranger.MAC, stranger.ClientID = "52:54:00:00:00:02", "02"
			if _, err := e.Offer(context.Background(), stranger); !errors.Is(err, dhcpengine.ErrRefused) {
				t.Errorf("new client while down: %v", err)
			}
			s := e.Stats()
			if !s.StoreDown || s.Refused < 1 || s.FromMemory < 3 {
				t.Errorf("stats while down: %+v", s)
			}
			st.Down.Store(false)
			deadline := time.Now().Add(3 * time.Second) // the store is probed every second
			for e.Stats().StoreDown && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			if e.Stats().StoreDown {
				t.Error("the store came back unnoticed")
			}
			out := logs.String()
			if strings.Count(out, "lease store unavailable") != 1 || strings.Count(out, "available again") != 1 {
				t.Errorf("outage logs:\n%s", out)
			}
		})
	}
}

// TestOfferHonoursAnotherServersLease is the survivor of a failover: a
// client bound an address through one server (which then died), and its
// next DISCOVER reaches the other, which loaded the shared store before
// that bind. The survivor must offer the client that address, not a new
// one beside the lease it still holds; and on a store that is not shared
// (SQLite: this server is its only writer) memory is the whole truth, so
// nothing is read.
func TestOfferHonoursAnotherServersLease(t *testing.T) {
	for _, fam := range dhcpengine.TestPools {
		t.Run(fmt.Sprint(fam.Family), func(t *testing.T) {
			ctx := context.Background()
			st := storetest.NewFake()
			st.SetShared(true)
			dead := newEngine(t, dhcpengine.Options{Family: fam.Family, Store: st})
			t.Cleanup(dead.Start(ctx))
			survivor := newEngine(t, dhcpengine.Options{Family: fam.Family, Store: st})
			t.Cleanup(survivor.Start(ctx))
			now := time.Now()
			op := func(mac string) store.LeaseOp {
				return store.LeaseOp{Kind: store.LeaseBind, MAC: mac, ClientID: "id-" + mac, PoolFirst: fam.First, PoolLast: fam.Last, Now: now, Until: now.Add(time.Hour)}
			}
			// The survivor has loaded the (empty) store: it offers first.
			if o, err := survivor.Offer(ctx, op("52:54:00:30:00:00")); err != nil || o.Err != nil {
				t.Fatalf("first offer: %v %v", err, o.Err)
			}
			// The other server binds a client an address away from the
			// start of the pool.
			c := op("52:54:00:30:00:01")
			c.Addr = fam.First.Next().Next().Next().Next().Next()
			if r := bind(t, dead, c, false); r.Err != nil {
				t.Fatal(r.Err)
			}
			// The client comes back to the survivor, by its MAC under a
			// new client id (iPXE after the ROM) and by its id.
			for _, again := range []store.LeaseOp{op("52:54:00:30:00:01"), {Kind: store.LeaseBind, MAC: "52:54:00:30:00:01", ClientID: "other",
				PoolFirst: fam.First, PoolLast: fam.Last, Now: now, Until: now.Add(time.Hour)}} {
				o, err := survivor.Offer(ctx, again)
				if err != nil || o.Err != nil || o.Lease.Addr != c.Addr {
					t.Errorf("survivor offered %v (%v %v), want the client's lease %v", o.Lease.Addr, err, o.Err, c.Addr)
				}
			}
			// Not shared: the store is not read for a client memory does
			// not know.
			st.SetShared(false)
			c2 := op("52:54:00:30:00:02")
			c2.Addr = fam.First.Next().Next().Next().Next().Next().Next().Next()
			if r := bind(t, dead, c2, false); r.Err != nil {
				t.Fatal(r.Err)
			}
			if o, _ := survivor.Offer(ctx, op("52:54:00:30:00:02")); o.Lease.Addr == c2.Addr {
				t.Errorf("a store that is not shared was read for %v", c2.Addr)
			}
		})
	}
}
