package dhcp6

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// committer is the group commit (as in dhcp4): workers hand it a packet's
// lease changes; it gathers what arrives within a short window (or up to
// max ops), commits them in one transaction, one fsync, then runs each
// packet's continuation, which sends the reply. An Advertise or Reply
// therefore never leaves before its leases are durable, and workers never
// wait for the disk.
type committer struct {
	store  store.Store
	in     chan *pending
	window time.Duration
	max    int

	batches atomic.Uint64
	ops     atomic.Uint64
}

// pending is one packet's ops, committed together in one batch.
type pending struct {
	ops  []store.Lease6Op
	done func([]store.Lease6Result, error)
}

func newCommitter(st store.Store, window time.Duration, max, queue int) *committer {
	return &committer{store: st, in: make(chan *pending, queue), window: window, max: max}
}

// enqueue hands ops to the committer; done runs on the committer's
// goroutine once they are committed (or failed) and must be quick. It
// blocks while the queue is full, which backs up into the packet queue,
// where packets are dropped and counted.
func (c *committer) enqueue(ctx context.Context, ops []store.Lease6Op, done func([]store.Lease6Result, error)) {
	select {
	case c.in <- &pending{ops: ops, done: done}:
	case <-ctx.Done():
		done(nil, ctx.Err())
	}
}

// run commits until ctx is done; the caller cancels it only after the
// workers have stopped.
func (c *committer) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	batch := make([]*pending, 0, c.max)
	ops := make([]store.Lease6Op, 0, c.max)
	for {
		var first *pending
		select {
		case first = <-c.in:
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
		res, err := c.store.CommitLeases6(ctx, ops)
		c.batches.Add(1)
		c.ops.Add(uint64(len(ops)))
		i := 0
		for _, p := range batch {
			var mine []store.Lease6Result
			if err == nil {
				mine = res[i : i+len(p.ops)]
			}
			i += len(p.ops)
			p.done(mine, err)
		}
	}
}
