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
// the same rules as the SQL store (the contract suite checks both).
func (f *Fake) CommitLeases(_ context.Context, ops []store.LeaseOp) ([]store.LeaseResult, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leases == nil {
		f.leases = map[netip.Addr]store.Lease{}
	}
	out := make([]store.LeaseResult, len(ops))
	for i := range ops {
		op := ops[i]
		op.Addr = op.Addr.Unmap()
		l, err := f.applyLease(&op)
		out[i] = store.LeaseResult{Lease: l, Err: err}
	}
	return out, nil
}

func (f *Fake) Lease(_ context.Context, a netip.Addr) (*store.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.leases[a.Unmap()]
	if !ok {
		return nil, fmt.Errorf("lease %s: %w", a, store.ErrNotFound)
	}
	return &l, nil
}

func (f *Fake) Leases(_ context.Context, family int) ([]store.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Lease
	for a, l := range f.leases {
		if store.Family(a) == family {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

// MACLeases returns the rows of one NIC.
func (f *Fake) MACLeases(_ context.Context, family int, mac string) ([]store.Lease, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Lease
	for a, l := range f.leases {
		if store.Family(a) == family && l.MAC == mac {
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out, nil
}

// SetShared makes the fake say other servers write its leases too (as
// PostgreSQL's store does), so a DHCP engine reads clients it has not seen.
func (f *Fake) SetShared(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.shared = v
}

// SharedLeases reports what SetShared set.
func (f *Fake) SharedLeases() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shared
}

func (f *Fake) reservedForOther(a netip.Addr, host string) bool {
	for name, h := range f.hosts {
		p4, ok4 := h.rec.Addr4()
		p6, ok6 := h.rec.Addr6()
		if ((ok4 && p4.Addr() == a) || (ok6 && p6.Addr() == a)) && name != host {
			return true
		}
	}
	return false
}

func (f *Fake) applyLease(op *store.LeaseOp) (store.Lease, error) {
	cur, ok := f.leases[op.Addr]
	switch op.Kind {
	case store.LeaseBind:
		switch {
		case !op.Reserved && !op.InPool(op.Addr):
			return store.Lease{}, fmt.Errorf("bind %s: %w", op.Addr, store.ErrNotInPool)
		case !op.Reserved && f.reservedForOther(op.Addr, op.Host):
			return store.Lease{}, fmt.Errorf("%s is reserved for another host: %w", op.Addr, store.ErrAddressTaken)
		case ok && !op.CanBind(&cur):
			return store.Lease{}, fmt.Errorf("%s is held by %s: %w", op.Addr, cur.MAC+cur.ClientID, store.ErrAddressTaken)
		}
		l := op.Lease(store.LeaseBound)
		f.leases[op.Addr] = l
		return l, nil
	case store.LeaseRelease, store.LeaseDecline:
		if !ok || !op.CanGiveBack(&cur) {
			return store.Lease{}, fmt.Errorf("lease %s of %s: %w", op.Addr, op.MAC+op.ClientID, store.ErrNotFound)
		}
		l := store.GiveBack(cur, op)
		f.leases[op.Addr] = l
		return l, nil
	}
	return store.Lease{}, fmt.Errorf("lease op %d: unknown kind", op.Kind)
}

func (Broken) CommitLeases(context.Context, []store.LeaseOp) ([]store.LeaseResult, error) {
	return nil, ErrBroken
}
func (Broken) Lease(context.Context, netip.Addr) (*store.Lease, error) { return nil, ErrBroken }
func (Broken) Leases(context.Context, int) ([]store.Lease, error)      { return nil, ErrBroken }

// LeaseFamily is what the lease contract needs to know of one address
// family: a small pool and, from Declared, a host's reservation.
type LeaseFamily struct {
	Family int
	// Pool is a pool of three addresses; the IPv6 one straddles a 16-bit
	// boundary, so the store's key order must be numeric order.
	Pool [3]netip.Addr
	// Reserved is ResvHost's address in Declared, and ResvPool a pool of
	// three around it.
	Reserved netip.Addr
	ResvHost string
	ResvPool [3]netip.Addr
}

func addrs(ss ...string) (out [3]netip.Addr) {
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}

// LeaseFamilies are the two families the contract runs for.
var LeaseFamilies = []LeaseFamily{
	{Family: 4, Pool: addrs("198.51.100.10", "198.51.100.11", "198.51.100.12"),
		Reserved: netip.MustParseAddr("192.0.2.10"), ResvHost: "a", ResvPool: addrs("192.0.2.9", "192.0.2.10", "192.0.2.11")},
	{Family: 6, Pool: addrs("2001:db8:1::fffe", "2001:db8:1::ffff", "2001:db8:1::1:0"),
		Reserved: netip.MustParseAddr("2001:db8::b"), ResvHost: "b", ResvPool: addrs("2001:db8::a", "2001:db8::b", "2001:db8::c")},
}

// RunLeases is the lease part of the contract, for both families. The
// store does not choose addresses (the DHCP servers do, in memory); it
// keeps binds durable and arbitrates them: a bind succeeds only for the
// address's holder, for an expired or unused address, or for a host's own
// reservation.
func RunLeases(t *testing.T, open Opener) {
	for _, fam := range LeaseFamilies {
		t.Run(fmt.Sprintf("v%d", fam.Family), func(t *testing.T) { runLeases(t, open, fam) })
	}
	t.Run("BothFamiliesOneBatch", func(t *testing.T) {
		s, reopen := open(t)
		now := time.UnixMilli(time.Now().UnixMilli())
		var ops []store.LeaseOp
		for _, fam := range LeaseFamilies {
			ops = append(ops, store.LeaseOp{Kind: store.LeaseBind, Addr: fam.Pool[0], MAC: "52:54:00:00:00:01", ClientID: "01",
				PoolFirst: fam.Pool[0], PoolLast: fam.Pool[2], Now: now, Until: now.Add(time.Hour)})
		}
		res, err := s.CommitLeases(context.Background(), ops)
		if err != nil || res[0].Err != nil || res[1].Err != nil {
			t.Fatalf("one batch of both families: %+v, %v", res, err)
		}
		if reopen != nil {
			s = reopen()
		}
		for _, fam := range LeaseFamilies {
			rows, err := s.Leases(context.Background(), fam.Family)
			if err != nil || len(rows) != 1 || rows[0].Addr != fam.Pool[0] {
				t.Errorf("v%d leases: %+v, %v", fam.Family, rows, err)
			}
		}
	})
}

func runLeases(t *testing.T, open Opener, fam LeaseFamily) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	pool := fam.Pool
	commit := func(t *testing.T, s store.Store, ops ...store.LeaseOp) []store.LeaseResult {
		t.Helper()
		for i := range ops {
			if ops[i].Now.IsZero() {
				ops[i].Now = now
			}
			if ops[i].Until.IsZero() {
				ops[i].Until = ops[i].Now.Add(time.Hour)
			}
		}
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
		r := commit(t, s, op)[0]
		return r.Lease, r.Err
	}
	// client is a client with its MAC, client-id (DUID) and IA.
	client := func(kind store.LeaseOpKind, addr netip.Addr, mac, cid string, iaid uint32) store.LeaseOp {
		return store.LeaseOp{Kind: kind, Addr: addr, MAC: mac, ClientID: cid, IAID: iaid, PoolFirst: pool[0], PoolLast: pool[2]}
	}

	t.Run("BindDurable", func(t *testing.T) {
		s, reopen := open(t)
		op := client(store.LeaseBind, pool[1], "52:54:00:00:00:01", "0001aa", 7)
		l, err := one(t, s, op)
		if err != nil || l.Addr != pool[1] || l.State != store.LeaseBound || !l.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("bind = %+v, %v", l, err)
		}
		if reopen != nil {
			s = reopen()
		}
		got, err := s.Lease(ctx, pool[1])
		if err != nil || got.MAC != op.MAC || got.ClientID != op.ClientID || got.IAID != 7 ||
			got.State != store.LeaseBound || !got.Expires.Equal(now.Add(time.Hour)) {
			t.Fatalf("after reopen: %+v, %v", got, err)
		}
		if _, err := s.Lease(ctx, pool[0]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Lease of an unused address: %v, want ErrNotFound", err)
		}
		rows, err := s.Leases(ctx, fam.Family)
		if err != nil || len(rows) != 1 {
			t.Errorf("Leases(%d) = %+v, %v", fam.Family, rows, err)
		}
		if rows, err := s.Leases(ctx, 10-fam.Family); err != nil || len(rows) != 0 {
			t.Errorf("Leases of the other family = %+v, %v", rows, err)
		}
	})

	// The stores a DHCP engine shares with other servers answer for one
	// NIC's leases (the survivor of a failover learns them).
	t.Run("MACLeases", func(t *testing.T) {
		s, _ := open(t)
		sh, ok := s.(interface {
			MACLeases(ctx context.Context, family int, mac string) ([]store.Lease, error)
		})
		if !ok {
			t.Skip("the store has no MACLeases")
		}
		one(t, s, client(store.LeaseBind, pool[0], "52:54:00:00:00:01", "01", 1))
		one(t, s, client(store.LeaseBind, pool[1], "52:54:00:00:00:02", "02", 1))
		one(t, s, client(store.LeaseBind, pool[2], "52:54:00:00:00:01", "03", 2))
		rows, err := sh.MACLeases(ctx, fam.Family, "52:54:00:00:00:01")
		if err != nil || len(rows) != 2 || rows[0].Addr != pool[0] || rows[1].Addr != pool[2] {
			t.Errorf("MACLeases = %+v, %v; want the rows of %v and %v", rows, err, pool[0], pool[2])
		}
		if rows, err := sh.MACLeases(ctx, 10-fam.Family, "52:54:00:00:00:01"); err != nil || len(rows) != 0 {
			t.Errorf("MACLeases of the other family = %+v, %v", rows, err)
		}
		if rows, err := sh.MACLeases(ctx, fam.Family, "52:54:00:00:00:09"); err != nil || len(rows) != 0 {
			t.Errorf("MACLeases of a NIC with none = %+v, %v", rows, err)
		}
	})

	t.Run("Ownership", func(t *testing.T) {
		s, _ := open(t)
		mine := client(store.LeaseBind, pool[0], "52:54:00:00:00:01", "01", 1)
		one(t, s, mine)
		// Renewal by the holder extends.
		renew := mine
		renew.Now, renew.Until = now.Add(time.Minute), now.Add(3*time.Hour)
		if l, err := one(t, s, renew); err != nil || !l.Expires.Equal(renew.Until) {
			t.Errorf("renew = %+v, %v", l, err)
		}
		// The same NIC under another client-id: Anaconda's second DHCPv4,
		// or the next boot stage's DUID on DHCPv6.
		stage := client(store.LeaseBind, pool[0], "52:54:00:00:00:01", "02", 9)
		if l, err := one(t, s, stage); err != nil || l.ClientID != "02" {
			t.Errorf("same MAC, new client id: %+v, %v", l, err)
		}
		// The same client's other IA does not take its first IA's address.
		otherIA := client(store.LeaseBind, pool[0], "52:54:00:00:00:01", "02", 10)
		if _, err := one(t, s, otherIA); !errors.Is(err, store.ErrAddressTaken) {
			t.Errorf("a client's second IA: %v, want ErrAddressTaken", err)
		}
		stranger := client(store.LeaseBind, pool[0], "52:54:00:00:00:02", "03", 1)
		if _, err := one(t, s, stranger); !errors.Is(err, store.ErrAddressTaken) {
			t.Errorf("a stranger: %v, want ErrAddressTaken", err)
		}
		if _, err := one(t, s, client(store.LeaseBind, netip.Addr{}.Next(), "52:54:00:00:00:02", "03", 1)); err == nil {
			t.Errorf("bind of an invalid address succeeded")
		}
		outside := client(store.LeaseBind, pool[2].Next(), "52:54:00:00:00:02", "03", 1)
		if _, err := one(t, s, outside); !errors.Is(err, store.ErrNotInPool) {
			t.Errorf("bind outside the pool: %v, want ErrNotInPool", err)
		}
		// Once expired, the address is anyone's.
		stranger.Now = now.Add(4 * time.Hour)
		stranger.Until = stranger.Now.Add(time.Hour)
		if l, err := one(t, s, stranger); err != nil || l.MAC != stranger.MAC {
			t.Errorf("after expiry: %+v, %v", l, err)
		}
	})

	t.Run("ReleaseAndDecline", func(t *testing.T) {
		s, _ := open(t)
		mine := client(store.LeaseBind, pool[0], "52:54:00:00:00:01", "01", 1)
		one(t, s, mine)
		for _, k := range []store.LeaseOpKind{store.LeaseRelease, store.LeaseDecline} {
			if _, err := one(t, s, client(k, pool[0], "52:54:00:00:00:09", "09", 1)); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("op %d by a stranger: %v, want ErrNotFound", k, err)
			}
		}
		rel := client(store.LeaseRelease, pool[0], "52:54:00:00:00:01", "01", 1)
		if l, err := one(t, s, rel); err != nil || l.State != store.LeaseReleased || l.MAC != mine.MAC || l.Active(now.Add(time.Millisecond)) {
			t.Fatalf("release = %+v, %v", l, err)
		}
		if l, err := one(t, s, mine); err != nil || l.State != store.LeaseBound {
			t.Fatalf("rebind after release = %+v, %v", l, err)
		}
		dec := client(store.LeaseDecline, pool[0], "52:54:00:00:00:01", "01", 1)
		dec.Until = now.Add(10 * time.Minute)
		if d, err := one(t, s, dec); err != nil || d.State != store.LeaseDeclined || d.MAC != "" || d.ClientID != "" {
			t.Fatalf("decline = %+v, %v", d, err)
		}
		// Neither the decliner nor anyone else gets it during quarantine.
		for _, c := range []store.LeaseOp{mine, client(store.LeaseBind, pool[0], "52:54:00:00:00:03", "03", 1)} {
			if _, err := one(t, s, c); !errors.Is(err, store.ErrAddressTaken) {
				t.Errorf("%s bound the quarantined address: %v", c.MAC, err)
			}
		}
		late := client(store.LeaseBind, pool[0], "52:54:00:00:00:04", "04", 1)
		late.Now = now.Add(11 * time.Minute)
		if _, err := one(t, s, late); err != nil {
			t.Errorf("after quarantine: %v", err)
		}
	})

	t.Run("Reservations", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		dyn := store.LeaseOp{Kind: store.LeaseBind, Addr: fam.Reserved, MAC: "52:54:00:00:02:01", ClientID: "21",
			PoolFirst: fam.ResvPool[0], PoolLast: fam.ResvPool[2]}
		if _, err := one(t, s, dyn); !errors.Is(err, store.ErrAddressTaken) {
			t.Errorf("a stranger binding %s's reservation from the pool: %v, want ErrAddressTaken", fam.ResvHost, err)
		}
		dyn.Addr = fam.ResvPool[0]
		if _, err := one(t, s, dyn); err != nil {
			t.Errorf("the pool beside a reservation: %v", err)
		}
		res := store.LeaseOp{Kind: store.LeaseBind, Addr: fam.Reserved, MAC: "52:54:00:00:00:0f", ClientID: "31",
			Host: fam.ResvHost, Reserved: true}
		if l, err := one(t, s, res); err != nil || l.Host != fam.ResvHost || l.State != store.LeaseBound {
			t.Fatalf("reserved bind = %+v, %v", l, err)
		}
		// The same host under another client id and MAC (firmware, then
		// the installer) takes its reservation over; a stranger does not.
		res.ClientID, res.MAC = "32", "52:54:00:00:00:1f"
		if l, err := one(t, s, res); err != nil || l.ClientID != "32" {
			t.Fatalf("reserved bind under a new client id = %+v, %v", l, err)
		}
		res.Host, res.ClientID, res.MAC = "someone-else", "33", "52:54:00:00:00:2f"
		if _, err := one(t, s, res); !errors.Is(err, store.ErrAddressTaken) {
			t.Errorf("another host's reserved bind of a held address: %v, want ErrAddressTaken", err)
		}
	})

	t.Run("BatchArbitratesBetweenServers", func(t *testing.T) {
		s, _ := open(t)
		var wide []netip.Addr
		for a := pool[0]; len(wide) < 100; a = a.Next() {
			wide = append(wide, a)
		}
		Arbitrate(t, []store.Store{s, s, s, s}, fam.Family, wide, 5, 20, now)
		// The same address twice in one batch: the first wins.
		a1 := store.LeaseOp{Kind: store.LeaseBind, Addr: pool[0], MAC: "52:54:00:00:09:01", ClientID: "91", Reserved: true, Host: "x", Now: now.Add(2 * time.Hour), Until: now.Add(3 * time.Hour)}
		a2 := a1
		a2.MAC, a2.ClientID, a2.Host = "52:54:00:00:09:02", "92", "y"
		res := commit(t, s, a1, a2)
		if res[0].Err != nil || !errors.Is(res[1].Err, store.ErrAddressTaken) {
			t.Errorf("one address twice in a batch: %v / %v", res[0].Err, res[1].Err)
		}
	})
}

// Arbitrate races servers for the same addresses, each binding them for
// clients of its own from another starting point, in batches of per
// binds: each address must go to exactly one client, the losers must get
// ErrAddressTaken, and the stored rows must say who won.
func Arbitrate(t *testing.T, servers []store.Store, family int, pool []netip.Addr, batches, per int, now time.Time) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	owner := map[netip.Addr]string{}
	var wg sync.WaitGroup
	errs := make(chan error, len(servers)*batches*per)
	for srv, s := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for batch := 0; batch < batches; batch++ {
				var ops []store.LeaseOp
				for i := 0; i < per; i++ {
					a := pool[(srv*len(pool)/len(servers)+batch*per+i)%len(pool)]
					ops = append(ops, store.LeaseOp{Kind: store.LeaseBind, Addr: a, MAC: fmt.Sprintf("02:%02x:%02x:%02x:%02x:%02x", family, srv, batch, i/256, i%256),
						ClientID: fmt.Sprintf("%02x%02x%04x", srv, batch, i), PoolFirst: pool[0], PoolLast: pool[len(pool)-1], Now: now, Until: now.Add(time.Hour)})
				}
				res, err := s.CommitLeases(ctx, ops)
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				for i, r := range res {
					switch {
					case errors.Is(r.Err, store.ErrAddressTaken):
					case r.Err != nil:
						errs <- fmt.Errorf("bind %v to %s: %w", ops[i].Addr, ops[i].MAC, r.Err)
					case owner[r.Lease.Addr] != "":
						errs <- fmt.Errorf("%v given to %s and %s", r.Lease.Addr, owner[r.Lease.Addr], ops[i].MAC)
					default:
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
	rows, err := servers[len(servers)-1].Leases(ctx, family)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range rows {
		if l.State != store.LeaseBound || owner[l.Addr] != l.MAC {
			t.Errorf("row %v is %s's (%s), the commit said %s's", l.Addr, l.MAC, l.State, owner[l.Addr])
		}
	}
	if want := min(len(pool), batches*per); len(rows) != len(owner) || len(rows) < want {
		t.Errorf("v%d: %d rows, %d winners; want %d of each", family, len(rows), len(owner), want)
	}
}
