package dhcpengine

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"sort"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// memLeases is what this server knows of its family's lease space: the
// store's rows as read at start, its own offers, and the outcome of every
// change it committed. It is the only place addresses are chosen (an
// offer costs no store write); it is a hint, never the truth: a bind is
// checked by the store, and a conflict corrects it.
type memLeases struct {
	mu     sync.Mutex
	family int
	limit  int
	// loaded is set once the store's leases were read; lastTry paces
	// retries while they cannot be.
	loaded  bool
	lastTry time.Time
	lastErr error
	byAddr  map[netip.Addr]*memLease
	// byClient and byMAC are each client's latest address: by its
	// identifier and IA, and by its NIC (another boot stage of the same
	// machine, or a DHCPv4 client whose client-id changed).
	byClient map[clientIA]netip.Addr
	byMAC    map[string]netip.Addr
	// next is, per pool, where the search for an unused address goes on.
	next map[[2]netip.Addr]netip.Addr
	// sweepAt is when a full table may next be swept of expired entries.
	sweepAt time.Time
	// reservedForOther reports whether an address is another host's
	// reservation, which the pool never offers.
	reservedForOther func(a netip.Addr, host string) bool
}

type clientIA struct {
	id   string
	iaid uint32
}

type memLease struct {
	store.Lease // State may also be leaseTaken
	// fresh says the address came from the unused-address search: a
	// conflict on it means another server hands out the same range.
	fresh bool
}

// leaseTaken marks an address the store refused us: bound by a client we
// have not seen (another server's).
const leaseTaken = "taken"

// takenHold is how long such an address stays out of our offers: its
// holder is unknown, so we look again after a while.
const takenHold = 10 * time.Minute

// searchSteps bounds the addresses one offer looks at.
const searchSteps = 1 << 16

func newMemLeases(family, limit int, reservedForOther func(netip.Addr, string) bool) *memLeases {
	return &memLeases{family: family, limit: limit, reservedForOther: reservedForOther, byAddr: map[netip.Addr]*memLease{},
		byClient: map[clientIA]netip.Addr{}, byMAC: map[string]netip.Addr{}, next: map[[2]netip.Addr]netip.Addr{}}
}

func (m *memLeases) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byAddr)
}

// load reads the store's leases once, so a restarted server offers
// returning clients their addresses and skips bound ones.
func (m *memLeases) load(ctx context.Context, st store.Store) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.loaded {
		return nil
	}
	if m.lastErr != nil && time.Since(m.lastTry) < probeEvery {
		return m.lastErr
	}
	m.lastTry = time.Now()
	rows, err := st.Leases(ctx, m.family)
	if err != nil {
		m.lastErr = fmt.Errorf("read leases: %w", err)
		return m.lastErr
	}
	now := time.Now()
	latest := map[netip.Addr]time.Time{}
	for _, l := range rows {
		if _, ours := m.byAddr[l.Addr]; ours {
			continue // changed by this server since the read began
		}
		if len(m.byAddr) >= m.limit && !l.Active(now) {
			continue
		}
		m.byAddr[l.Addr] = &memLease{Lease: l}
		latest[l.Addr] = l.UpdatedAt
	}
	// Index each client's most recently updated row.
	for a, at := range latest {
		l := &m.byAddr[a].Lease
		if l.State == store.LeaseDeclined {
			continue
		}
		if cur, ok := m.byClient[clientIA{l.ClientID, l.IAID}]; l.ClientID != "" && (!ok || m.byAddr[cur].UpdatedAt.Before(at)) {
			m.byClient[clientIA{l.ClientID, l.IAID}] = a
		}
		if cur, ok := m.byMAC[l.MAC]; l.MAC != "" && (!ok || m.byAddr[cur].UpdatedAt.Before(at)) {
			m.byMAC[l.MAC] = a
		}
	}
	m.loaded = true
	return nil
}

// knows reports whether memory has an address for op's client.
func (m *memLeases) knows(op *store.LeaseOp) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, byID := m.byClient[clientIA{op.ClientID, op.IAID}]
	_, byMAC := m.byMAC[op.MAC]
	return (byID && op.ClientID != "") || (byMAC && op.MAC != "")
}

// learn records rows read from the store for one client, oldest first so
// that its indexes end on the latest: running bound leases only, and only
// where memory has nothing newer.
func (m *memLeases) learn(rows []store.Lease, now time.Time) {
	sort.Slice(rows, func(i, j int) bool { return rows[i].UpdatedAt.Before(rows[j].UpdatedAt) })
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, l := range rows {
		if l.State != store.LeaseBound || !l.Active(now) {
			continue
		}
		if e := m.byAddr[l.Addr]; e != nil && !e.UpdatedAt.Before(l.UpdatedAt) {
			continue
		}
		m.put(l, false, now)
	}
}

// free reports whether a may be offered to op's client.
func (m *memLeases) free(a netip.Addr, op *store.LeaseOp) bool {
	e := m.byAddr[a]
	return e == nil || !op.Now.Before(e.Expires) || (e.State != leaseTaken && op.CanBind(&e.Lease))
}

// put records l, keeping the table within its limit: a full table is
// swept of expired entries (at most once a second); if it is still full
// the entry is not kept, which costs at worst a NAK later.
func (m *memLeases) put(l store.Lease, fresh bool, now time.Time) {
	if _, ok := m.byAddr[l.Addr]; !ok && len(m.byAddr) >= m.limit {
		if now.Before(m.sweepAt) {
			return
		}
		m.sweepAt = now.Add(time.Second)
		for a, old := range m.byAddr {
			if !now.Before(old.Expires) {
				m.forget(a, &old.Lease)
				delete(m.byAddr, a)
			}
		}
		if len(m.byAddr) >= m.limit {
			return
		}
	}
	m.byAddr[l.Addr] = &memLease{Lease: l, fresh: fresh}
	if l.State == store.LeaseDeclined || l.State == leaseTaken {
		return
	}
	if l.ClientID != "" {
		m.byClient[clientIA{l.ClientID, l.IAID}] = l.Addr
	}
	if l.MAC != "" {
		m.byMAC[l.MAC] = l.Addr
	}
}

// forget drops the client indexes that point at a.
func (m *memLeases) forget(a netip.Addr, l *store.Lease) {
	if k := (clientIA{l.ClientID, l.IAID}); m.byClient[k] == a {
		delete(m.byClient, k)
	}
	if m.byMAC[l.MAC] == a {
		delete(m.byMAC, l.MAC)
	}
}

// offer picks an address for op's client and holds it until hold: the
// reservation (that or nothing), else the client's previous address, else
// the one it asked for or holds (op.Addr), else an unused one, else an
// expired one. A client that comes back (a reinstall, Anaconda's second
// DHCP, the next boot stage) so gets what it had.
func (m *memLeases) offer(op *store.LeaseOp, hold time.Time) store.LeaseResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	take := func(a netip.Addr, fresh bool) store.LeaseResult {
		l := op.Lease(store.LeaseOffered)
		l.Addr, l.Expires = a, hold
		// An offer never shortens a bound lease.
		if e := m.byAddr[a]; e == nil || e.State != store.LeaseBound || !op.Owns(&e.Lease) || e.Expires.Before(hold) {
			m.put(l, fresh, op.Now)
		}
		return store.LeaseResult{Lease: l}
	}
	if op.Reserved {
		if !m.free(op.Addr, op) {
			return store.LeaseResult{Err: fmt.Errorf("%s is held by another client: %w", op.Addr, store.ErrAddressTaken)}
		}
		return take(op.Addr, false)
	}
	if !op.PoolFirst.IsValid() || !op.PoolLast.IsValid() {
		return store.LeaseResult{Err: store.ErrNoAddress}
	}
	usable := func(a netip.Addr) bool {
		return a.IsValid() && op.InPool(a) && m.free(a, op) && !m.reservedForOther(a, op.Host)
	}
	var prev []netip.Addr
	if a, ok := m.byClient[clientIA{op.ClientID, op.IAID}]; ok && op.ClientID != "" {
		prev = append(prev, a)
	}
	if a, ok := m.byMAC[op.MAC]; ok && op.MAC != "" {
		prev = append(prev, a)
	}
	for _, a := range append(prev, op.Addr) {
		if usable(a) {
			return take(a, false)
		}
	}
	pool := [2]netip.Addr{op.PoolFirst, op.PoolLast}
	next, ok := m.next[pool]
	if !ok {
		next = op.PoolFirst
		for a := range m.byAddr {
			if op.InPool(a) && !a.Less(next) {
				next = a.Next()
			}
		}
	}
	// Past the top the search wraps, and takes expired addresses too.
	for steps := 0; steps < searchSteps; steps++ {
		if !next.IsValid() || !op.InPool(next) {
			next = op.PoolFirst
		}
		if usable(next) {
			m.next[pool] = next.Next()
			return take(next, m.byAddr[next] == nil)
		}
		next = next.Next()
	}
	m.next[pool] = next
	return store.LeaseResult{Err: store.ErrNoAddress}
}

// running returns op's client's lease if it is bound to it and still
// running: what may be answered while the store is down, for the time it
// has left (it is durable until then). With op.Addr set, the lease must be
// of that address.
func (m *memLeases) running(op *store.LeaseOp) (store.Lease, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var cands []netip.Addr
	if op.Addr.IsValid() {
		cands = append(cands, op.Addr)
	} else {
		if a, ok := m.byClient[clientIA{op.ClientID, op.IAID}]; ok && op.ClientID != "" {
			cands = append(cands, a)
		}
		if a, ok := m.byMAC[op.MAC]; ok && op.MAC != "" {
			cands = append(cands, a)
		}
	}
	for _, a := range cands {
		if e := m.byAddr[a]; e != nil && e.State == store.LeaseBound && op.Owns(&e.Lease) && op.Now.Before(e.Expires) {
			l := e.Lease
			l.Host = op.Host
			return l, true
		}
	}
	return store.Lease{}, false
}

// applied learns from a committed op's outcome.
func (m *memLeases) applied(op *store.LeaseOp, r store.LeaseResult) {
	if !op.Addr.IsValid() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a := op.Addr
	e := m.byAddr[a]
	switch {
	case r.Err == nil:
		if e != nil && e.Lease.Addr == a {
			m.forget(a, &e.Lease)
		}
		m.put(r.Lease, false, op.Now)
	case errors.Is(r.Err, store.ErrAddressTaken) && op.Kind == store.LeaseBind:
		if e != nil && e.fresh && op.Owns(&e.Lease) && op.PoolFirst.IsValid() && op.PoolLast.IsValid() {
			// Another server is handing out the same unused addresses:
			// go on from a random point, so the two stop colliding.
			m.next[[2]netip.Addr{op.PoolFirst, op.PoolLast}] = randomIn(op.PoolFirst, op.PoolLast)
		}
		// A holder we know stays; otherwise the holder is someone we
		// have not seen (another server's client).
		if e == nil || op.Owns(&e.Lease) || !op.Now.Before(e.Expires) {
			if e != nil {
				m.forget(a, &e.Lease)
			}
			m.put(store.Lease{Addr: a, State: leaseTaken, Expires: op.Now.Add(takenHold)}, false, op.Now)
		}
	}
}

// randomIn is a random address from first to last.
func randomIn(first, last netip.Addr) netip.Addr {
	lo, hi := new(big.Int).SetBytes(first.AsSlice()), new(big.Int).SetBytes(last.AsSlice())
	span := new(big.Int).Sub(hi, lo)
	if span.Sign() <= 0 {
		return first
	}
	// A random point among the first 2^62, enough for any real pool.
	off := big.NewInt(rand.Int64N(1 << 62))
	off.Mod(off, new(big.Int).Add(span, big.NewInt(1)))
	b := new(big.Int).Add(lo, off).FillBytes(make([]byte, first.BitLen()/8))
	a, _ := netip.AddrFromSlice(b)
	return a
}
