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
