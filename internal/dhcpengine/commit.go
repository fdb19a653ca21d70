package dhcpengine

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// committer is the group commit: workers hand it a packet's lease changes
// and go on with the next packet; it gathers whatever arrives within a
// short window (or up to max ops), commits them in one transaction (one
// fsync), then runs each packet's continuation, which sends the reply. A
// reply therefore never leaves before its lease is durable, the cost of
// the fsync is shared by every packet in the batch, and the number of
// leases in flight is bounded by the queue, not by the number of workers.
//
// Offers never reach the store: a lost offer costs the client one
// retransmission, so it need not survive a crash, and choosing it from
// memory (memLeases) halves the work of the store's single writer, which
// is what bounds the exchange rate. The store stays the arbiter: a bind is
// a conditional write, and an address another server bound meanwhile
// fails, after which the client is told no and starts over.
type committer struct {
	store   store.Store
	in      chan *pending
	replies chan []func() // committed batches' continuations (reply)
	window  time.Duration
	max     int
	mem     *memLeases
	log     *slog.Logger

	batches atomic.Uint64
	ops     atomic.Uint64

	// down is set while the store answers ErrUnavailable: no new leases
	// then, only renewals of leases mem knows are durable.
	down      atomic.Bool
	downSince atomic.Int64 // unix nanoseconds
	refused   atomic.Uint64
	fromMem   atomic.Uint64
}

// pending is one packet's ops, committed together in one batch.
type pending struct {
	ops  []store.LeaseOp
	done func([]store.LeaseResult, error)
}

// ErrRefused is the answer to a new client while the store is down. The
// outage is logged once; a refusal is only counted (Stats.Refused).
var ErrRefused = errors.New("lease store unavailable: no new leases until it is back")

// probeEvery is how often a store that is down is tried when no lease
// change arrives to try it: offers are refused meanwhile, so without the
// probe nothing would notice it came back.
const probeEvery = time.Second

// enqueue hands ops to the committer; done runs on the committer's
// goroutine once they are committed (or failed) and must be quick: it
// sends the reply. enqueue blocks while the queue is full, which backs up
// into the packet queue, where packets are dropped and counted.
func (c *committer) enqueue(ctx context.Context, ops []store.LeaseOp, done func([]store.LeaseResult, error)) {
	select {
	case c.in <- &pending{ops: ops, done: done}:
	case <-ctx.Done():
		done(nil, ctx.Err())
	}
}

// offer chooses an address from memory, held until hold. While the store
// is down only a client with a durable lease still running gets an offer,
// of that lease.
func (c *committer) offer(ctx context.Context, op *store.LeaseOp, hold time.Time) (store.LeaseResult, error) {
	if err := c.mem.load(ctx, c.store); err != nil {
		if !errors.Is(err, store.ErrUnavailable) {
			return store.LeaseResult{}, err
		}
		c.setDown(err)
	}
	if c.down.Load() {
		if l, ok := c.mem.running(op); ok {
			c.fromMem.Add(1)
			return store.LeaseResult{Lease: l}, nil
		}
		c.refused.Add(1)
		return store.LeaseResult{}, ErrRefused
	}
	c.learnClient(ctx, op)
	return c.mem.offer(op, hold), nil
}

// sharedLeases is a store other servers write leases to as well
// (PostgreSQL): memory holds only what this server read at start and
// committed since, so a client it does not know may hold a lease another
// server committed -- one that died, whose clients now come here.
type sharedLeases interface {
	SharedLeases() bool
	MACLeases(ctx context.Context, family int, mac string) ([]store.Lease, error)
}

// learnClient reads, on a shared store, the leases of a pool client
// memory does not know, so that it is offered the address it holds
// (RFC 2131 4.3.1) instead of a second one. One indexed read per new
// client: its offer is in memory from then on. A failed read is only a
// missed hint; the bind is still checked by the store.
func (c *committer) learnClient(ctx context.Context, op *store.LeaseOp) {
	sh, ok := c.store.(sharedLeases)
	if !ok || op.Reserved || op.MAC == "" || !sh.SharedLeases() || c.mem.knows(op) {
		return
	}
	rows, err := sh.MACLeases(ctx, c.mem.family, op.MAC)
	if err != nil {
		c.log.Debug("client's leases not read", "mac", op.MAC, "err", err)
		return
	}
	c.mem.learn(rows, op.Now)
}

// setDown records an outage, logging once when it starts.
func (c *committer) setDown(err error) {
	if c.down.CompareAndSwap(false, true) {
		c.downSince.Store(time.Now().UnixNano())
		c.log.Error("lease store unavailable: refusing new leases; renewals of leases already known are answered for their remaining time only",
			"known", c.mem.size(), "err", err)
	}
}

// setUp ends an outage, logging once.
func (c *committer) setUp() {
	if c.down.CompareAndSwap(true, false) {
		c.log.Warn("lease store available again: new leases resumed",
			"down_for", time.Since(time.Unix(0, c.downSince.Load())).Round(time.Millisecond),
			"refused", c.refused.Load(), "answered_from_memory", c.fromMem.Load())
	}
}

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
		n := len(first.ops)
		timer.Reset(c.window)
	collect:
		for n < c.max {
			select {
			case p := <-c.in:
				batch = append(batch, p)
				n += len(p.ops)
			case <-timer.C:
				break collect
			}
		}
		timer.Stop()
		ops = ops[:0]
		for _, p := range batch {
			ops = append(ops, p.ops...)
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
		i := 0
		replies := make([]func(), 0, len(batch))
		for _, p := range batch {
			var mine []store.LeaseResult
			perr := err
			switch {
			case err == nil:
				mine = res[i : i+len(p.ops)]
				for k := range p.ops {
					c.mem.applied(&p.ops[k], mine[k])
				}
			case errors.Is(err, store.ErrUnavailable):
				mine, perr = c.fromMemory(p.ops)
			}
			i += len(p.ops)
			replies = append(replies, func() { p.done(mine, perr) })
		}
		// The replies (a sendto each) go out on another goroutine, while
		// this one commits the next batch: sent from here, a batch's
		// hundreds of sends held up the next fsync.
		c.replies <- replies
	}
}

// reply runs the continuations of committed batches, in commit order,
// until replies is closed.
func (c *committer) reply() {
	for batch := range c.replies {
		for _, f := range batch {
			f()
		}
	}
}

// fromMemory answers a packet's ops while the store is down: renewals of
// leases known to be durable are answered for the time they have left;
// a packet with anything else waits for the store (no reply).
func (c *committer) fromMemory(ops []store.LeaseOp) ([]store.LeaseResult, error) {
	out := make([]store.LeaseResult, len(ops))
	for k := range ops {
		l, ok := c.mem.running(&ops[k])
		if ops[k].Kind != store.LeaseBind || !ok {
			c.refused.Add(1)
			return nil, ErrRefused
		}
		out[k] = store.LeaseResult{Lease: l}
	}
	c.fromMem.Add(1)
	return out, nil
}
