package dhcp4

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// committer is the group commit: workers hand it lease changes and wait;
// it gathers whatever arrives within a short window (or up to max ops),
// commits them in one transaction (one fsync), then wakes every waiter.
// An ACK therefore never goes out before its lease is durable, and the cost
// of the fsync is shared by every packet in the batch.
type committer struct {
	store  store.Store
	in     chan *pending
	window time.Duration
	max    int

	batches atomic.Uint64
	ops     atomic.Uint64
}

type pending struct {
	op   store.LeaseOp
	done func(result)
}

type result struct {
	res store.LeaseResult
	err error // the whole batch failed: nothing was committed
}

// newCommitter makes a committer that batches up to max ops, with room
// for queue ops waiting for the next batch.
func newCommitter(st store.Store, window time.Duration, max, queue int) *committer {
	return &committer{store: st, in: make(chan *pending, queue), window: window, max: max}
}

// enqueue hands op to the committer; done runs on the committer's goroutine
// once the op's batch is committed (or failed), and must be quick: it
// sends the reply. Workers therefore never wait for an fsync, so the
// number of leases in flight is bounded by the queue, not by the number
// of workers. enqueue blocks while the queue is full, which backs up into
// the packet queue, where packets are dropped and counted.
func (c *committer) enqueue(ctx context.Context, op store.LeaseOp, done func(store.LeaseResult, error)) {
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

// run commits until ctx is done. It uses ctx for the commits themselves,
// so the caller cancels it only after the workers have stopped.
func (c *committer) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*pending, 0, c.max)
	ops := make([]store.LeaseOp, 0, c.max)
	for {
		var first *pending
		select {
		case first = <-c.in:
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
		for i, p := range batch {
			r := result{err: err}
			if err == nil {
				r.res = res[i]
			}
			p.done(r)
		}
	}
}
