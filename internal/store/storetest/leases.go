package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// CommitLeases applies the batch all-or-nothing under the fake's lock, with
// the same address choice as the SQL store (the contract suite checks both).
func (f *Fake) CommitLeases(_ context.Context, ops []store.LeaseOp) ([]store.LeaseResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leases == nil {
		f.leases = map[int64]store.Lease{}
	}
	out := make([]store.LeaseResult, len(ops))
	for i := range ops {
		l, err := f.applyLease(&ops[i])
		out[i] = store.LeaseResult{Lease: l, Err: err}
	}
	return out, nil
}

func (f *Fake) Lease(_ context.Context, a netip.Addr) (*store.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leases[store.AddrNum(a)]
	if !ok {
		return nil, fmt.Errorf("lease %s: %w", a, store.ErrNotFound)
	}
	return &l, nil
}

func (f *Fake) Leases(context.Context) ([]store.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Lease
	for _, l := range f.leases {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

func (f *Fake) reservedForOther(a netip.Addr, host string) bool {
	for name, h := range f.hosts {
		if p, ok := h.rec.Addr4(); ok && p.Addr() == a && name != host {
			return true
		}
	}
	return false
}

func (f *Fake) applyLease(op *store.LeaseOp) (store.Lease, error) {
	switch op.Kind {
	case store.LeaseOffer:
		return f.offer(op)
	case store.LeaseBind:
		if !op.Reserved && !op.InPool(op.Addr) {
			return store.Lease{}, fmt.Errorf("bind %s: %w", op.Addr, store.ErrNotInPool)
		}
		return f.claim(op, op.Addr, store.LeaseBound)
	case store.LeaseRelease, store.LeaseDecline:
		n := store.AddrNum(op.Addr)
		cur, ok := f.leases[n]
		if !ok || !op.Owns(&cur) || cur.State == store.LeaseDeclined {
			return store.Lease{}, fmt.Errorf("lease %s of %s: %w", op.Addr, op.MAC, store.ErrNotFound)
		}
		cur.UpdatedAt = time.UnixMilli(op.Now.UnixMilli())
		if op.Kind == store.LeaseRelease {
			cur.State, cur.Expires = store.LeaseReleased, cur.UpdatedAt
		} else {
			cur.State, cur.Expires, cur.MAC, cur.ClientID, cur.Host = store.LeaseDeclined, time.UnixMilli(op.Until.UnixMilli()), "", "", ""
		}
		f.leases[n] = cur
		return cur, nil
	}
	return store.Lease{}, fmt.Errorf("lease op %d: unknown kind", op.Kind)
}

func (f *Fake) claim(op *store.LeaseOp, a netip.Addr, state string) (store.Lease, error) {
	if !op.Reserved && f.reservedForOther(a, op.Host) {
		return store.Lease{}, fmt.Errorf("%s is reserved for another host: %w", a, store.ErrAddressTaken)
	}
	n := store.AddrNum(a)
	cur, ok := f.leases[n]
	if ok {
		mine := op.Owns(&cur) && cur.State != store.LeaseDeclined
		if !mine && cur.Active(op.Now) {
			return store.Lease{}, fmt.Errorf("%s is held by %s: %w", a, cur.MAC, store.ErrAddressTaken)
		}
		if mine && state == store.LeaseOffered && cur.State == store.LeaseBound && !cur.Expires.Before(op.Until) {
			return cur, nil
		}
	}
	l := store.Lease{Addr: a, MAC: op.MAC, ClientID: op.ClientID, Host: op.Host, State: state,
		Expires: time.UnixMilli(op.Until.UnixMilli()), UpdatedAt: time.UnixMilli(op.Now.UnixMilli())}
	f.leases[n] = l
	return l, nil
}

func (f *Fake) offer(op *store.LeaseOp) (store.Lease, error) {
	if op.Reserved {
		return f.claim(op, op.Addr, store.LeaseOffered)
	}
	if !op.PoolFirst.IsValid() {
		return store.Lease{}, store.ErrNoAddress
	}
	lo, hi := store.AddrNum(op.PoolFirst), store.AddrNum(op.PoolLast)
	try := func(a netip.Addr) (store.Lease, bool) {
		l, err := f.claim(op, a, store.LeaseOffered)
		return l, err == nil
	}
	var prev *store.Lease
	for n, l := range f.leases {
		if n >= lo && n <= hi && l.State != store.LeaseDeclined && op.Owns(&l) && (prev == nil || l.UpdatedAt.After(prev.UpdatedAt)) {
			prev = &l
		}
	}
	if prev != nil {
		if l, ok := try(prev.Addr); ok {
			return l, nil
		}
	}
	if op.Addr.IsValid() && op.InPool(op.Addr) {
		if l, ok := try(op.Addr); ok {
			return l, nil
		}
	}
	// Lowest never-used address first, then the one expired longest ago:
	// the same preference as the SQL store, in a simpler order.
	var expired []store.Lease
	for n := lo; n <= hi; n++ {
		cur, used := f.leases[n]
		if !used {
			if l, ok := try(store.NumAddr(n)); ok {
				return l, nil
			}
			continue
		}
		if !cur.Active(op.Now) {
			expired = append(expired, cur)
		}
	}
	sort.Slice(expired, func(i, j int) bool { return expired[i].Expires.Before(expired[j].Expires) })
	for _, e := range expired {
		if l, ok := try(e.Addr); ok {
			return l, nil
		}
	}
	return store.Lease{}, store.ErrNoAddress
}

func (Broken) CommitLeases(context.Context, []store.LeaseOp) ([]store.LeaseResult, error) {
	return nil, ErrBroken
}
func (Broken) Lease(context.Context, netip.Addr) (*store.Lease, error) { return nil, ErrBroken }
func (Broken) Leases(context.Context) ([]store.Lease, error)           { return nil, ErrBroken }

// RunLeases is the lease part of the contract.
func RunLeases(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	pool := func(op store.LeaseOp, first, last string) store.LeaseOp {
		op.PoolFirst, op.PoolLast = a(first), a(last)
		return op
	}
	commit := func(t *testing.T, s store.Store, ops ...store.LeaseOp) []store.LeaseResult {
		t.Helper()
		res, err := s.CommitLeases(ctx, ops)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != len(ops) {
			t.Fatalf("%d results for %d ops", len(res), len(ops))
		}
		return res
	}
	one := func(t *testing.T, s store.Store, op store.LeaseOp) (store.Lease, error) {
		t.Helper()
		if op.Now.IsZero() {
			op.Now = now
		}
		if op.Until.IsZero() {
			op.Until = op.Now.Add(time.Hour)
		}
		r := commit(t, s, op)[0]
		return r.Lease, r.Err
	}
	offer := func(mac string) store.LeaseOp {
		return pool(store.LeaseOp{Kind: store.LeaseOffer, MAC: mac}, "198.51.100.10", "198.51.100.12")
	}
	bind := func(mac, addr string) store.LeaseOp {
		return pool(store.LeaseOp{Kind: store.LeaseBind, MAC: mac, Addr: a(addr)}, "198.51.100.10", "198.51.100.12")
	}

	t.Run("OfferBindDurable", func(t *testing.T) {
		s, reopen := open(t)
		l, err := one(t, s, offer("52:54:00:00:00:01"))
		if err != nil || l.Addr != a("198.51.100.10") || l.State != store.LeaseOffered {
			t.Fatalf("offer = %+v, %v", l, err)
		}
		l, err = one(t, s, bind("52:54:00:00:00:01", "198.51.100.10"))
		if err != nil || l.State != store.LeaseBound || !l.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("bind = %+v, %v", l, err)
		}
		if reopen != nil {
			s = reopen()
		}
		got, err := s.Lease(ctx, a("198.51.100.10"))
		if err != nil || got.MAC != "52:54:00:00:00:01" || got.State != store.LeaseBound || !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
		if _, err := s.Lease(ctx, a("198.51.100.11")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Lease of an unused address: %v, want ErrNotFound", err)
		}
	})

	t.Run("SameClientSameAddress", func(t *testing.T) {
		s, _ := open(t)
		one(t, s, offer("52:54:00:00:00:02"))
		l1, _ := one(t, s, offer("52:54:00:00:00:01"))
		one(t, s, bind("52:54:00:00:00:01", l1.Addr.String()))
		// Anaconda's second DHCP: new client-id, same MAC.
		op := offer("52:54:00:00:00:01")
		op.ClientID = "ff00112233"
		l2, err := one(t, s, op)
		if err != nil || l2.Addr != l1.Addr {
			t.Fatalf("second offer = %v, %v; want %v", l2.Addr, err, l1.Addr)
		}
		if l2.State != store.LeaseBound {
			t.Errorf("an offer downgraded a bound lease to %s", l2.State)
		}
		rel := store.LeaseOp{Kind: store.LeaseRelease, MAC: "52:54:00:00:00:01", Addr: l1.Addr}
		if l, err := one(t, s, rel); err != nil || l.State != store.LeaseReleased {
			t.Fatalf("release = %+v, %v", l, err)
		}
		if l, err := one(t, s, offer("52:54:00:00:00:01")); err != nil || l.Addr != l1.Addr {
			t.Errorf("after release the client got %v, %v; want its old %v", l.Addr, err, l1.Addr)
		}
		if _, err := one(t, s, store.LeaseOp{Kind: store.LeaseRelease, MAC: "52:54:00:00:00:09", Addr: l1.Addr}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("release by a stranger: %v, want ErrNotFound", err)
		}
	})

	t.Run("ExhaustionAndExpiry", func(t *testing.T) {
		s, _ := open(t)
		seen := map[netip.Addr]bool{}
		for i := 1; i <= 3; i++ {
			l, err := one(t, s, offer(fmt.Sprintf("52:54:00:00:01:%02x", i)))
			if err != nil || seen[l.Addr] {
				t.Fatalf("offer %d = %v, %v", i, l.Addr, err)
			}
			seen[l.Addr] = true
		}
		if _, err := one(t, s, offer("52:54:00:00:01:04")); !errors.Is(err, store.ErrNoAddress) {
			t.Fatalf("fourth client in a 3-address pool: %v, want ErrNoAddress", err)
		}
		later := offer("52:54:00:00:01:04")
		later.Now = now.Add(2 * time.Hour)
		l, err := one(t, s, later)
		if err != nil || !seen[l.Addr] {
			t.Fatalf("after expiry: %v, %v; want a reused address", l.Addr, err)
		}
	})

	t.Run("RequestedAddress", func(t *testing.T) {
		s, _ := open(t)
		op := offer("52:54:00:00:00:01")
		op.Addr = a("198.51.100.12")
		if l, err := one(t, s, op); err != nil || l.Addr != op.Addr {
			t.Fatalf("requested free address: %v, %v", l.Addr, err)
		}
		op.MAC = "52:54:00:00:00:02"
		if l, err := one(t, s, op); err != nil || l.Addr == op.Addr {
			t.Fatalf("requested taken address: got %v, %v", l.Addr, err)
		}
		// The hole below the requested address is used.
		for _, m := range []string{"52:54:00:00:00:03"} {
			if l, err := one(t, s, offer(m)); err != nil || l.Addr == a("198.51.100.12") {
				t.Fatalf("third client: %v, %v", l.Addr, err)
			}
		}
	})

	t.Run("BindConflicts", func(t *testing.T) {
		s, _ := open(t)
		one(t, s, bind("52:54:00:00:00:01", "198.51.100.11"))
		if _, err := one(t, s, bind("52:54:00:00:00:02", "198.51.100.11")); !errors.Is(err, store.ErrAddressTaken) {
			t.Errorf("bind of a held address: %v, want ErrAddressTaken", err)
		}
		if _, err := one(t, s, bind("52:54:00:00:00:02", "198.51.100.99")); !errors.Is(err, store.ErrNotInPool) {
			t.Errorf("bind outside the pool: %v, want ErrNotInPool", err)
		}
		// Renewal by the holder extends.
		op := bind("52:54:00:00:00:01", "198.51.100.11")
		op.Now, op.Until = now.Add(time.Minute), now.Add(3*time.Hour)
		if l, err := one(t, s, op); err != nil || !l.Expires.Equal(op.Until) {
			t.Errorf("renew = %+v, %v", l, err)
		}
	})

	t.Run("Reservations", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		// Host a holds 192.0.2.10; the pool around it must skip it.
		dyn := func(mac string) store.LeaseOp {
			return pool(store.LeaseOp{Kind: store.LeaseOffer, MAC: mac}, "192.0.2.9", "192.0.2.11")
		}
		var got []netip.Addr
		for _, m := range []string{"52:54:00:00:02:01", "52:54:00:00:02:02"} {
			l, err := one(t, s, dyn(m))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, l.Addr)
		}
		for _, g := range got {
			if g == a("192.0.2.10") {
				t.Fatalf("the pool handed out host a's reservation: %v", got)
			}
		}
		if _, err := one(t, s, dyn("52:54:00:00:02:03")); !errors.Is(err, store.ErrNoAddress) {
			t.Errorf("pool of 3 with one reservation, third client: %v", err)
		}
		req := dyn("52:54:00:00:02:03")
		req.Kind, req.Addr = store.LeaseBind, a("192.0.2.10")
		if _, err := one(t, s, req); !errors.Is(err, store.ErrAddressTaken) {
			t.Errorf("stranger binding a reservation: %v, want ErrAddressTaken", err)
		}
		res := store.LeaseOp{Kind: store.LeaseOffer, MAC: "52:54:00:00:00:0a", Host: "a", Addr: a("192.0.2.10"), Reserved: true}
		if l, err := one(t, s, res); err != nil || l.Addr != res.Addr || l.Host != "a" {
			t.Fatalf("reserved offer = %+v, %v", l, err)
		}
		res.Kind = store.LeaseBind
		if l, err := one(t, s, res); err != nil || l.State != store.LeaseBound {
			t.Fatalf("reserved bind = %+v, %v", l, err)
		}
	})

	t.Run("DeclineQuarantines", func(t *testing.T) {
		s, _ := open(t)
		l, _ := one(t, s, offer("52:54:00:00:00:01"))
		one(t, s, bind("52:54:00:00:00:01", l.Addr.String()))
		if _, err := one(t, s, store.LeaseOp{Kind: store.LeaseDecline, MAC: "52:54:00:00:00:02", Addr: l.Addr}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("decline by a stranger: %v", err)
		}
		dec := store.LeaseOp{Kind: store.LeaseDecline, MAC: "52:54:00:00:00:01", Addr: l.Addr, Now: now, Until: now.Add(10 * time.Minute)}
		if d, err := one(t, s, dec); err != nil || d.State != store.LeaseDeclined || d.MAC != "" {
			t.Fatalf("decline = %+v, %v", d, err)
		}
		// Neither the decliner nor anyone else gets it during quarantine.
		for _, m := range []string{"52:54:00:00:00:01", "52:54:00:00:00:03"} {
			op := offer(m)
			op.Addr = l.Addr
			if o, err := one(t, s, op); err != nil || o.Addr == l.Addr {
				t.Errorf("%s got the quarantined %v (%v)", m, o.Addr, err)
			}
		}
		op := offer("52:54:00:00:00:04")
		op.Addr = l.Addr
		op.Now = now.Add(11 * time.Minute)
		if o, err := one(t, s, op); err != nil || o.Addr != l.Addr {
			t.Errorf("after quarantine: %v, %v; want %v", o.Addr, err, l.Addr)
		}
	})

	t.Run("BatchAndConcurrentServers", func(t *testing.T) {
		s, _ := open(t)
		big := func(mac string) store.LeaseOp {
			return store.LeaseOp{Kind: store.LeaseOffer, MAC: mac, PoolFirst: a("198.18.0.1"), PoolLast: a("198.18.3.255"), Now: now, Until: now.Add(time.Minute)}
		}
		var mu sync.Mutex
		owner := map[netip.Addr]string{}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for srv := 0; srv < 4; srv++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for batch := 0; batch < 5; batch++ {
					var ops []store.LeaseOp
					for i := 0; i < 20; i++ {
						ops = append(ops, big(fmt.Sprintf("52:54:%02x:%02x:%02x:00", srv, batch, i)))
					}
					res, err := s.CommitLeases(ctx, ops)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for i, r := range res {
						if r.Err != nil {
							errs <- r.Err
						} else if o, dup := owner[r.Lease.Addr]; dup {
							errs <- fmt.Errorf("%v given to %s and %s", r.Lease.Addr, o, ops[i].MAC)
						} else {
							owner[r.Lease.Addr] = ops[i].MAC
						}
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if len(owner) != 400 {
			t.Errorf("%d distinct addresses for 400 clients", len(owner))
		}
		all, err := s.Leases(ctx)
		if err != nil || len(all) != 400 {
			t.Errorf("Leases = %d rows, %v", len(all), err)
		}
	})
}
