package dhcp4

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// committer is the group commit: workers hand it lease changes and wait;
// it gathers whatever arrives within a short window (or up to max ops),
// commits them in one transaction (one fsync), then wakes every waiter.
// An ACK therefore never goes out before its lease is durable, and the cost
// of the fsync is shared by every packet in the batch.
//
// OFFERs do not reach the store at all: a lost offer costs the client one
// retransmission, so it need not survive a crash, and choosing it from
// memory halves the work of the store's single writer, which is what
// bounds DORA/s. The store stays the arbiter: the REQUEST's bind re-checks
// the address inside its transaction, and an address another server bound
// meanwhile gets a NAK, after which the client starts over.
type committer struct {
	store  store.Store
	in     chan *pending
	window time.Duration
	max    int
	mem    *memLeases
	// log is set by Serve; nil discards.
	log *slog.Logger

	batches atomic.Uint64
	ops     atomic.Uint64

	// down is set while the store answers ErrUnavailable: no new leases
	// then, only renewals of leases mem knows are durable.
	down      atomic.Bool
	downSince atomic.Int64 // unix nanoseconds
	refused   atomic.Uint64
	fromCache atomic.Uint64
}

type pending struct {
	op   store.LeaseOp
	done func(result)
}

type result struct {
	res store.LeaseResult
	err error // the whole batch failed: nothing was committed
}

// errRefused is the answer to a new client while the store is down.
var errRefused = errors.New("lease store unavailable: no new leases until it is back")

// memLeaseLimit bounds the leases kept in memory (about 150 bytes each).
const memLeaseLimit = 1 << 20

// newCommitter makes a committer that batches up to max ops, with room
// for queue ops waiting for the next batch.
func newCommitter(st store.Store, window time.Duration, max, queue int) *committer {
	return &committer{store: st, in: make(chan *pending, queue), window: window, max: max, mem: newMemLeases(memLeaseLimit)}
}

func (c *committer) logger() *slog.Logger {
	if c.log == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return c.log
}

// enqueue hands op to the committer; done runs on the committer's goroutine
// once the op's batch is committed (or failed), and must be quick: it
// sends the reply. Workers therefore never wait for an fsync, so the
// number of leases in flight is bounded by the queue, not by the number
// of workers. enqueue blocks while the queue is full, which backs up into
// the packet queue, where packets are dropped and counted. An offer is
// answered at once, on the caller's goroutine.
func (c *committer) enqueue(ctx context.Context, op store.LeaseOp, done func(store.LeaseResult, error)) {
	if op.Kind == store.LeaseOffer {
		res, err := c.offer(ctx, op)
		c.ops.Add(1)
		done(res, err)
		return
	}
	p := &pending{op: op, done: func(r result) { done(r.res, r.err) }}
	select {
	case c.in <- p:
	case <-ctx.Done():
		done(store.LeaseResult{}, ctx.Err())
	}
}

// submit is enqueue that waits for the result.
func (c *committer) submit(ctx context.Context, op store.LeaseOp) (store.LeaseResult, error) {
	ch := make(chan result, 1)
	c.enqueue(ctx, op, func(res store.LeaseResult, err error) { ch <- result{res, err} })
	select {
	case r := <-ch:
		return r.res, r.err
	case <-ctx.Done():
		// The batch may still commit; the client will retry and get
		// the same address, which is what the lease's MAC is for.
		return store.LeaseResult{}, ctx.Err()
	}
}

// offer chooses an address from memory. While the store is down only a
// client with a durable lease still running gets an offer (of that lease).
func (c *committer) offer(ctx context.Context, op store.LeaseOp) (store.LeaseResult, error) {
	if err := c.mem.load(ctx, c.store); err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			return store.LeaseResult{}, err
		}
		c.setDown(err)
	}
	if c.down.Load() {
		if l, ok := c.mem.running(&op); ok {
			c.fromCache.Add(1)
			return store.LeaseResult{Lease: l}, nil
		}
		c.refused.Add(1)
		return store.LeaseResult{}, errRefused
	}
	return c.mem.offer(&op), nil
}

// setDown records an outage, logging once when it starts.
func (c *committer) setDown(err error) {
	if c.down.CompareAndSwap(false, true) {
		c.downSince.Store(time.Now().UnixNano())
		c.logger().Error("lease store unavailable: refusing new leases; renewals of leases already known are answered for their remaining time only",
			"known", c.mem.size(), "err", err)
	}
}

// setUp ends an outage, logging once.
func (c *committer) setUp() {
	if c.down.CompareAndSwap(true, false) {
		c.logger().Warn("lease store available again: new leases resumed",
			"down_for", time.Since(time.Unix(0, c.downSince.Load())).Round(time.Millisecond),
			"refused", c.refused.Load(), "answered_from_memory", c.fromCache.Load())
	}
}

// probeEvery is how often a store that is down is tried when no lease
// change arrives to try it: offers are refused meanwhile, so without the
// probe nothing would notice it came back.
const probeEvery = time.Second

// run commits until ctx is done. It uses ctx for the commits themselves,
// so the caller cancels it only after the workers have stopped.
func (c *committer) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	probe := time.NewTicker(probeEvery)
	defer probe.Stop()
	batch := make([]*pending, 0, c.max)
	ops := make([]store.LeaseOp, 0, c.max)
	for {
		var first *pending
		select {
		case first = <-c.in:
		case <-probe.C:
			if c.down.Load() {
				if _, err := c.store.CommitLeases(ctx, nil); err == nil {
					c.setUp()
				}
			}
			continue
		case <-ctx.Done():
			return
		}
		batch = append(batch[:0], first)
		timer.Reset(c.window)
	collect:
		for len(batch) < c.max {
			select {
			case p := <-c.in:
				batch = append(batch, p)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		ops = ops[:0]
		for _, p := range batch {
			ops = append(ops, p.op)
		}
		res, err := c.store.CommitLeases(ctx, ops)
		c.batches.Add(1)
		c.ops.Add(uint64(len(ops)))
		switch {
		case err == nil:
			c.setUp()
		case errors.Is(err, store.ErrUnavailable):
			c.setDown(err)
		}
		for i, p := range batch {
			r := result{err: err}
			switch {
			case err == nil:
				r.res = res[i]
				c.mem.applied(&p.op, res[i])
			case errors.Is(err, store.ErrUnavailable) && p.op.Kind == store.LeaseBind:
				// A renewal of a lease known to be durable is answered
				// for the time it has left; anything else waits.
				if l, ok := c.mem.running(&p.op); ok {
					c.fromCache.Add(1)
					r = result{res: store.LeaseResult{Lease: l}}
				} else {
					c.refused.Add(1)
				}
			}
			p.done(r)
		}
	}
}

// memLeases is what this server knows of the lease space: the store's rows
// as read at start, its own offers, and the outcome of every change it
// committed. Offers are chosen from it; it is a hint, never the truth: a
// bind is checked by the store, and a conflict corrects it.
type memLeases struct {
	mu    sync.Mutex
	limit int
	// loaded is set once the store's leases were read; lastTry paces
	// retries while it cannot be.
	loaded  bool
	lastTry time.Time
	lastErr error
	byNum   map[int64]*memLease
	byMAC   map[string]int64
	// next is, per pool, where the search for an unused address goes on.
	next map[[2]int64]int64
	// sweepAt is when a full table may next be swept of expired entries.
	sweepAt time.Time
}

type memLease struct {
	mac, clientID string
	state         string // store.Lease* states, or taken (bound by someone unknown)
	expires       time.Time
	// fresh says the address came from the unused-address search: a
	// conflict on it means another server hands out the same range.
	fresh bool
}

const leaseTaken = "taken"

// takenHold is how long an address the store refused stays out of our
// offers: its holder is unknown, so we learn again after a while.
const takenHold = 10 * time.Minute

func newMemLeases(limit int) *memLeases {
	return &memLeases{limit: limit, byNum: map[int64]*memLease{}, byMAC: map[string]int64{}, next: map[[2]int64]int64{}}
}

func (m *memLeases) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.byNum)
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
	rows, err := st.Leases(ctx)
	if err != nil {
		m.lastErr = fmt.Errorf("read leases: %w", err)
		return m.lastErr
	}
	now := time.Now()
	latest := map[string]time.Time{}
	for _, l := range rows {
		num := store.AddrNum(l.Addr)
		if _, ours := m.byNum[num]; ours {
			continue // changed by this server since the read began
		}
		if len(m.byNum) >= m.limit && !l.Active(now) {
			continue
		}
		m.byNum[num] = &memLease{mac: l.MAC, clientID: l.ClientID, state: l.State, expires: l.Expires}
		if l.MAC != "" && l.State != store.LeaseDeclined && l.UpdatedAt.After(latest[l.MAC]) {
			latest[l.MAC] = l.UpdatedAt
			m.byMAC[l.MAC] = num
		}
	}
	m.loaded = true
	return nil
}

func owns(e *memLease, op *store.LeaseOp) bool {
	return (e.mac != "" && e.mac == op.MAC) || (e.clientID != "" && e.clientID == op.ClientID)
}

// free reports whether num may be offered to op's client.
func (m *memLeases) free(num int64, op *store.LeaseOp) bool {
	e := m.byNum[num]
	return e == nil || !op.Now.Before(e.expires) ||
		(owns(e, op) && e.state != store.LeaseDeclined && e.state != leaseTaken)
}

// put records e at num, keeping the table within its limit: a full table
// is swept of expired entries (at most once a second); if it is still
// full the entry is not kept, which costs at worst a NAK later.
func (m *memLeases) put(num int64, e *memLease, now time.Time) {
	if _, ok := m.byNum[num]; !ok && len(m.byNum) >= m.limit {
		if now.Before(m.sweepAt) {
			return
		}
		m.sweepAt = now.Add(time.Second)
		for n, old := range m.byNum {
			if !now.Before(old.expires) {
				delete(m.byNum, n)
				if m.byMAC[old.mac] == n {
					delete(m.byMAC, old.mac)
				}
			}
		}
		if len(m.byNum) >= m.limit {
			return
		}
	}
	m.byNum[num] = e
	if e.mac != "" && e.state != store.LeaseDeclined {
		m.byMAC[e.mac] = num
	}
}

// offer picks an address, in the store's order (the reservation, the
// client's previous address, the one it asked for, an unused one, an
// expired one) and holds it until op.Until.
func (m *memLeases) offer(op *store.LeaseOp) store.LeaseResult {
	m.mu.Lock()
	defer m.mu.Unlock()
	take := func(num int64, fresh bool) store.LeaseResult {
		e := m.byNum[num]
		// An offer never shortens a bound lease.
		if e == nil || e.state != store.LeaseBound || !owns(e, op) || e.expires.Before(op.Until) {
			m.put(num, &memLease{mac: op.MAC, clientID: op.ClientID, state: store.LeaseOffered, expires: op.Until, fresh: fresh}, op.Now)
		}
		return store.LeaseResult{Lease: store.Lease{Addr: store.NumAddr(num), MAC: op.MAC, ClientID: op.ClientID, Host: op.Host,
			State: store.LeaseOffered, Expires: op.Until, UpdatedAt: op.Now}}
	}
	if op.Reserved {
		num := store.AddrNum(op.Addr)
		if !m.free(num, op) {
			return store.LeaseResult{Err: fmt.Errorf("%s is held by another client: %w", op.Addr, store.ErrAddressTaken)}
		}
		return take(num, false)
	}
	if !op.PoolFirst.IsValid() || !op.PoolLast.IsValid() {
		return store.LeaseResult{Err: store.ErrNoAddress}
	}
	if num, ok := m.byMAC[op.MAC]; ok && op.InPool(store.NumAddr(num)) && m.free(num, op) {
		return take(num, false)
	}
	if op.Addr.IsValid() && op.InPool(op.Addr) && m.free(store.AddrNum(op.Addr), op) {
		return take(store.AddrNum(op.Addr), false)
	}
	lo, hi := store.AddrNum(op.PoolFirst), store.AddrNum(op.PoolLast)
	pool := [2]int64{lo, hi}
	next, ok := m.next[pool]
	if !ok {
		next = lo
		for n := range m.byNum {
			if n >= next && n <= hi {
				next = n + 1
			}
		}
	}
	// Past the top, the search wraps and takes expired addresses. Each
	// offer looks at a bounded number of addresses.
	for steps := int64(0); steps < min(hi-lo+1, 1<<16); steps++ {
		if next > hi || next < lo {
			next = lo
		}
		if m.free(next, op) {
			m.next[pool] = next + 1
			return take(next, m.byNum[next] == nil)
		}
		next++
	}
	m.next[pool] = next
	return store.LeaseResult{Err: store.ErrNoAddress}
}

// running returns op's client's lease if it is bound to it and still
// running: what may be answered while the store is down, for the time it
// has left (it is durable until then). A bind must name that address.
func (m *memLeases) running(op *store.LeaseOp) (store.Lease, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	num, ok := m.byMAC[op.MAC]
	if op.Kind == store.LeaseBind {
		num, ok = store.AddrNum(op.Addr), op.Addr.Is4()
	}
	e := m.byNum[num]
	if !ok || e == nil || e.state != store.LeaseBound || e.mac != op.MAC || !op.Now.Before(e.expires) {
		return store.Lease{}, false
	}
	return store.Lease{Addr: store.NumAddr(num), MAC: e.mac, ClientID: e.clientID, Host: op.Host,
		State: store.LeaseBound, Expires: e.expires, UpdatedAt: op.Now}, true
}

// applied learns from a committed op's outcome.
func (m *memLeases) applied(op *store.LeaseOp, r store.LeaseResult) {
	if !op.Addr.Is4() {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	num := store.AddrNum(op.Addr)
	switch {
	case r.Err == nil && op.Kind == store.LeaseBind:
		m.put(num, &memLease{mac: op.MAC, clientID: op.ClientID, state: store.LeaseBound, expires: r.Lease.Expires}, op.Now)
	case r.Err == nil && op.Kind == store.LeaseRelease:
		m.put(num, &memLease{mac: op.MAC, clientID: op.ClientID, state: store.LeaseReleased, expires: op.Now}, op.Now)
	case r.Err == nil && op.Kind == store.LeaseDecline:
		if m.byMAC[op.MAC] == num {
			delete(m.byMAC, op.MAC)
		}
		m.put(num, &memLease{state: store.LeaseDeclined, expires: op.Until}, op.Now)
	case errors.Is(r.Err, store.ErrAddressTaken) && op.Kind == store.LeaseBind:
		e := m.byNum[num]
		if e != nil && e.fresh && owns(e, op) && op.PoolFirst.IsValid() && op.PoolLast.IsValid() {
			// Another server is handing out the same unused addresses:
			// go on from a random point, so the two stop colliding.
			lo, hi := store.AddrNum(op.PoolFirst), store.AddrNum(op.PoolLast)
			m.next[[2]int64{lo, hi}] = lo + rand.Int64N(hi-lo+1)
		}
		if m.byMAC[op.MAC] == num {
			delete(m.byMAC, op.MAC)
		}
		// A holder we know stays; otherwise the holder is someone we
		// have not seen (another server's client).
		if e == nil || owns(e, op) || !op.Now.Before(e.expires) {
			m.put(num, &memLease{state: leaseTaken, expires: op.Now.Add(takenHold)}, op.Now)
		}
	}
}
