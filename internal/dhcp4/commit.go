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
	done chan result
}

type result struct {
	res store.LeaseResult
	err error // the whole batch failed: nothing was committed
}

func newCommitter(st store.Store, window time.Duration, max int) *committer {
	return &committer{store: st, in: make(chan *pending, max), window: window, max: max}
}

// submit queues op and waits until its batch is committed.
func (c *committer) submit(ctx context.Context, op store.LeaseOp) (store.LeaseResult, error) {
	p := &pending{op: op, done: make(chan result, 1)}
	select {
	case c.in <- p:
	case <-ctx.Done():
		return store.LeaseResult{}, ctx.Err()
	}
	select {
	case r := <-p.done:
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
			p.done <- r
		}
	}
}
