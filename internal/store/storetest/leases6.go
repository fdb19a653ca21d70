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

// CommitLeases6 applies the batch under the fake's lock with the same
// address choice as the SQL store (the contract suite checks both).
func (f *Fake) CommitLeases6(_ context.Context, ops []store.Lease6Op) ([]store.Lease6Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leases6 == nil {
		f.leases6 = map[string]store.Lease6{}
	}
	out := make([]store.Lease6Result, len(ops))
	for i := range ops {
		l, err := f.applyLease6(&ops[i])
		out[i] = store.Lease6Result{Lease: l, Err: err}
	}
	return out, nil
}

func (f *Fake) Lease6(_ context.Context, a netip.Addr) (*store.Lease6, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leases6[store.Addr6Key(a)]
	if !ok {
		return nil, fmt.Errorf("lease6 %s: %w", a, store.ErrNotFound)
	}
	return &l, nil
}

func (f *Fake) Leases6(context.Context) ([]store.Lease6, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Lease6
	for _, l := range f.leases6 {
		out = append(out, l)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

func (f *Fake) reservedForOther6(a netip.Addr, host string) bool {
	for name, h := range f.hosts {
		if p, ok := h.rec.Addr6(); ok && p.Addr() == a && name != host {
			return true
		}
	}
	return false
}

func (f *Fake) applyLease6(op *store.Lease6Op) (store.Lease6, error) {
	switch op.Kind {
	case store.LeaseOffer:
		return f.choose6(op, store.LeaseOffered)
	case store.LeaseBind:
		return f.choose6(op, store.LeaseBound)
	case store.LeaseRelease, store.LeaseDecline:
		k := store.Addr6Key(op.Addr)
		cur, ok := f.leases6[k]
		if !ok || !op.Owns(&cur) || cur.State == store.LeaseDeclined {
			return store.Lease6{}, fmt.Errorf("lease6 %s of DUID %s: %w", op.Addr, op.DUID, store.ErrNotFound)
		}
		l := store.GiveBack6(cur, op)
		f.leases6[k] = l
		return l, nil
	}
	return store.Lease6{}, fmt.Errorf("lease6 op %d: unknown kind", op.Kind)
}

func (f *Fake) claim6(op *store.Lease6Op, a netip.Addr, state string) (store.Lease6, error) {
	if !op.Reserved && f.reservedForOther6(a, op.Host) {
		return store.Lease6{}, fmt.Errorf("%s is reserved for another host: %w", a, store.ErrAddressTaken)
	}
	k := store.Addr6Key(a)
	if cur, ok := f.leases6[k]; ok {
		mine := op.Owns(&cur) && cur.State != store.LeaseDeclined
		if !mine && cur.Active(op.Now) {
			return store.Lease6{}, fmt.Errorf("%s is held by DUID %s: %w", a, cur.DUID, store.ErrAddressTaken)
		}
		if mine && state == store.LeaseOffered && cur.State == store.LeaseBound && !cur.Expires.Before(op.Until) {
			return cur, nil
		}
	}
	l := store.Lease6{Addr: a, DUID: op.DUID, IAID: op.IAID, MAC: op.MAC, Host: op.Host, State: state,
		Expires: time.UnixMilli(op.Until.UnixMilli()), UpdatedAt: time.UnixMilli(op.Now.UnixMilli())}
	f.leases6[k] = l
	return l, nil
}

func (f *Fake) choose6(op *store.Lease6Op, state string) (store.Lease6, error) {
	if op.Reserved {
		return f.claim6(op, op.Addr, state)
	}
	if !op.PoolFirst.IsValid() {
		return store.Lease6{}, store.ErrNoAddress
	}
	try := func(a netip.Addr) (store.Lease6, bool) {
		l, err := f.claim6(op, a, state)
		return l, err == nil
	}
	// The client's previous address: its IA first, then its MAC under
	// another DUID.
	for _, sameIA := range []bool{true, false} {
		var prev *store.Lease6
		for _, l := range f.leases6 {
			if !op.InPool(l.Addr) || l.State == store.LeaseDeclined {
				continue
			}
			match := l.DUID == op.DUID && l.IAID == op.IAID
			if !sameIA {
				match = op.MAC != "" && l.MAC == op.MAC && l.DUID != op.DUID
			}
			if match && (prev == nil || l.UpdatedAt.After(prev.UpdatedAt)) {
				prev = &l
			}
		}
		if prev != nil {
			if l, ok := try(prev.Addr); ok {
				return l, nil
			}
		}
	}
	if op.Addr.IsValid() && op.InPool(op.Addr) {
		if l, ok := try(op.Addr); ok {
			return l, nil
		}
	}
	// Lowest never-used address, then the one expired longest ago; a
	// bounded walk, as pools may be huge.
	var expired []store.Lease6
	a := op.PoolFirst
	for i := 0; i < 4096+1024 && a.IsValid() && !op.PoolLast.Less(a); i, a = i+1, a.Next() {
		cur, used := f.leases6[store.Addr6Key(a)]
		if !used {
			if l, ok := try(a); ok {
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
	return store.Lease6{}, store.ErrNoAddress
}

func (Broken) CommitLeases6(context.Context, []store.Lease6Op) ([]store.Lease6Result, error) {
	return nil, ErrBroken
}
func (Broken) Lease6(context.Context, netip.Addr) (*store.Lease6, error) { return nil, ErrBroken }
func (Broken) Leases6(context.Context) ([]store.Lease6, error)           { return nil, ErrBroken }

// RunLeases6 is the DHCPv6 lease part of the contract.
func RunLeases6(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	a := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	one := func(t *testing.T, s store.Store, op store.Lease6Op) (store.Lease6, error) {
		t.Helper()
		if op.Now.IsZero() {
			op.Now = now
		}
		if op.Until.IsZero() {
			op.Until = op.Now.Add(time.Hour)
		}
		res, err := s.CommitLeases6(ctx, []store.Lease6Op{op})
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 1 {
			t.Fatalf("%d results for 1 op", len(res))
		}
		return res[0].Lease, res[0].Err
	}
	// A pool of three addresses that straddles a 16-bit boundary, so that
	// text order of the keys must be numeric order.
	op := func(kind store.LeaseOpKind, duid string, iaid uint32) store.Lease6Op {
		return store.Lease6Op{Kind: kind, DUID: duid, IAID: iaid, PoolFirst: a("2001:db8:1::fffe"), PoolLast: a("2001:db8:1::1:0")}
	}

	t.Run("Lease6OfferBindDurable", func(t *testing.T) {
		s, reopen := open(t)
		l, err := one(t, s, op(store.LeaseOffer, "000300015254000000aa", 1))
		if err != nil || l.Addr != a("2001:db8:1::fffe") || l.State != store.LeaseOffered {
			t.Fatalf("offer = %+v, %v", l, err)
		}
		b := op(store.LeaseBind, "000300015254000000aa", 1)
		b.MAC = "52:54:00:00:00:aa"
		l, err = one(t, s, b)
		if err != nil || l.Addr != a("2001:db8:1::fffe") || l.State != store.LeaseBound || l.MAC != b.MAC {
			t.Fatalf("bind = %+v, %v", l, err)
		}
		if reopen != nil {
			s = reopen()
		}
		got, err := s.Lease6(ctx, a("2001:db8:1::fffe"))
		if err != nil || got.DUID != b.DUID || got.IAID != 1 || got.State != store.LeaseBound || !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
		if _, err := s.Lease6(ctx, a("2001:db8:1::ffff")); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Lease6 of an unused address: %v, want ErrNotFound", err)
		}
		all, err := s.Leases6(ctx)
		if err != nil || len(all) != 1 {
			t.Errorf("Leases6 = %v, %v", all, err)
		}
	})

	t.Run("Lease6IdentityAndExhaustion", func(t *testing.T) {
		s, _ := open(t)
		l1, _ := one(t, s, op(store.LeaseBind, "01", 1))
		l2, err := one(t, s, op(store.LeaseBind, "01", 2))
		if err != nil || l2.Addr == l1.Addr {
			t.Fatalf("a second IA of one client: %v, %v; want another address than %v", l2.Addr, err, l1.Addr)
		}
		l3, err := one(t, s, op(store.LeaseOffer, "02", 1))
		if err != nil || l3.Addr != a("2001:db8:1::1:0") {
			t.Fatalf("third address (past ::ffff) = %v, %v", l3.Addr, err)
		}
		if _, err := one(t, s, op(store.LeaseOffer, "03", 1)); !errors.Is(err, store.ErrNoAddress) {
			t.Fatalf("fourth client: %v, want ErrNoAddress", err)
		}
		// A renewal asking for someone else's address gets its own.
		r := op(store.LeaseBind, "01", 1)
		r.Addr = l2.Addr
		if l, err := one(t, s, r); err != nil || l.Addr != l1.Addr {
			t.Errorf("renew naming another IA's address: %v, %v; want %v", l.Addr, err, l1.Addr)
		}
		// Release keeps the identity: the client returns to its address.
		rel := op(store.LeaseRelease, "01", 1)
		rel.Addr = l1.Addr
		if l, err := one(t, s, rel); err != nil || l.State != store.LeaseReleased {
			t.Fatalf("release = %+v, %v", l, err)
		}
		stranger := op(store.LeaseRelease, "09", 1)
		stranger.Addr = l2.Addr
		if _, err := one(t, s, stranger); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("release by a stranger: %v, want ErrNotFound", err)
		}
		if l, err := one(t, s, op(store.LeaseOffer, "01", 1)); err != nil || l.Addr != l1.Addr {
			t.Errorf("after release: %v, %v; want %v", l.Addr, err, l1.Addr)
		}
		// Expiry frees addresses for others.
		late := op(store.LeaseOffer, "03", 1)
		late.Now = now.Add(2 * time.Hour)
		if _, err := one(t, s, late); err != nil {
			t.Errorf("after expiry: %v", err)
		}
	})

	t.Run("Lease6SameMACNewDUID", func(t *testing.T) {
		s, _ := open(t)
		fw := op(store.LeaseBind, "0004aaaa", 7)
		fw.MAC = "52:54:00:00:00:01"
		l1, err := one(t, s, fw)
		if err != nil {
			t.Fatal(err)
		}
		// The installed system: another DUID and IAID, same NIC.
		inst := op(store.LeaseBind, "000100011234", 9)
		inst.MAC = "52:54:00:00:00:01"
		if l, err := one(t, s, inst); err != nil || l.Addr != l1.Addr || l.DUID != inst.DUID {
			t.Fatalf("next boot stage: %+v, %v; want %v", l, err, l1.Addr)
		}
	})

	t.Run("Lease6Reservations", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		// Host b holds 2001:db8::b; a pool around it skips it.
		dyn := func(duid string) store.Lease6Op {
			return store.Lease6Op{Kind: store.LeaseBind, DUID: duid, PoolFirst: a("2001:db8::a"), PoolLast: a("2001:db8::c")}
		}
		for _, d := range []string{"11", "12"} {
			if l, err := one(t, s, dyn(d)); err != nil || l.Addr == a("2001:db8::b") {
				t.Fatalf("pool client %s: %v, %v", d, l.Addr, err)
			}
		}
		if _, err := one(t, s, dyn("13")); !errors.Is(err, store.ErrNoAddress) {
			t.Errorf("third pool client: %v, want ErrNoAddress", err)
		}
		hint := dyn("13")
		hint.Addr = a("2001:db8::b")
		if _, err := one(t, s, hint); !errors.Is(err, store.ErrNoAddress) {
			t.Errorf("stranger asking for a reservation: %v, want ErrNoAddress", err)
		}
		res := store.Lease6Op{Kind: store.LeaseOffer, DUID: "21", Host: "b", Addr: a("2001:db8::b"), Reserved: true}
		if l, err := one(t, s, res); err != nil || l.Addr != res.Addr || l.Host != "b" {
			t.Fatalf("reserved offer = %+v, %v", l, err)
		}
		// The same host under another DUID (firmware, then installer)
		// takes its reservation over.
		res.Kind, res.DUID = store.LeaseBind, "22"
		if l, err := one(t, s, res); err != nil || l.State != store.LeaseBound || l.DUID != "22" {
			t.Fatalf("reserved bind under a new DUID = %+v, %v", l, err)
		}
	})

	t.Run("Lease6DeclineQuarantines", func(t *testing.T) {
		s, _ := open(t)
		l, _ := one(t, s, op(store.LeaseBind, "01", 1))
		bad := op(store.LeaseDecline, "02", 1)
		bad.Addr = l.Addr
		if _, err := one(t, s, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("decline by a stranger: %v", err)
		}
		dec := op(store.LeaseDecline, "01", 1)
		dec.Addr, dec.Until = l.Addr, now.Add(10*time.Minute)
		if d, err := one(t, s, dec); err != nil || d.State != store.LeaseDeclined || d.DUID != "" {
			t.Fatalf("decline = %+v, %v", d, err)
		}
		for _, d := range []string{"01", "03"} {
			o := op(store.LeaseOffer, d, 1)
			o.Addr = l.Addr
			if got, err := one(t, s, o); err != nil || got.Addr == l.Addr {
				t.Errorf("%s got the quarantined %v (%v)", d, got.Addr, err)
			}
		}
		o := op(store.LeaseOffer, "04", 1)
		o.Addr, o.Now = l.Addr, now.Add(11*time.Minute)
		if got, err := one(t, s, o); err != nil || got.Addr != l.Addr {
			t.Errorf("after quarantine: %v, %v; want %v", got.Addr, err, l.Addr)
		}
	})

	t.Run("Lease6ConcurrentServers", func(t *testing.T) {
		s, _ := open(t)
		var mu sync.Mutex
		owner := map[netip.Addr]string{}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for srv := 0; srv < 4; srv++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for batch := 0; batch < 5; batch++ {
					var ops []store.Lease6Op
					for i := 0; i < 20; i++ {
						ops = append(ops, store.Lease6Op{Kind: store.LeaseBind, DUID: fmt.Sprintf("%02x%02x%02x", srv, batch, i),
							PoolFirst: a("2001:db8:2::"), PoolLast: a("2001:db8:2::ffff"), Now: now, Until: now.Add(time.Minute)})
					}
					res, err := s.CommitLeases6(ctx, ops)
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					for i, r := range res {
						if r.Err != nil {
							errs <- r.Err
						} else if o, dup := owner[r.Lease.Addr]; dup {
							errs <- fmt.Errorf("%v given to %s and %s", r.Lease.Addr, o, ops[i].DUID)
						} else {
							owner[r.Lease.Addr] = ops[i].DUID
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
			t.Errorf("%d distinct addresses, want 400", len(owner))
		}
	})
}
