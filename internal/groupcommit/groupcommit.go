// Package groupcommit makes the writes of concurrent callers one commit:
// the caller that finds no commit running makes one of everything that
// waits; whatever arrives meanwhile goes into the next, made by a
// goroutine, so no caller waits for more than the commit that holds its
// work. A boot storm's thousands of callbacks are otherwise thousands of
// commits in a row, each through its own fsync (SQLite has one writer; on
// PostgreSQL the timeline's appends are ordered by one lock).
package groupcommit

import (
	"context"
	"sync"
	"time"
)

// Group batches values of type T into calls of Commit.
type Group[T any] struct {
	// Commit writes one batch, in one transaction; its error is every
	// caller's in the batch. It must not keep the slice.
	Commit func(ctx context.Context, batch []T) error
	// Timeout bounds each commit (default 30 s). A commit is made for
	// every caller in it, so it runs detached from the context of the
	// caller that happens to make it.
	Timeout time.Duration

	mu      sync.Mutex
	pending []item[T]
	busy    bool
}

type item[T any] struct {
	v    T
	done chan error
}

// Do queues v and returns once the commit that held it is done, with that
// commit's error.
func (g *Group[T]) Do(ctx context.Context, v T) error {
	it := item[T]{v: v, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, it)
	if g.busy {
		g.mu.Unlock()
		return <-it.done
	}
	g.busy = true
	g.mu.Unlock()
	if g.commit(ctx) {
		go func() {
			for g.commit(ctx) {
			}
		}()
	}
	return <-it.done
}

// commit writes what waits and reports whether more arrived meanwhile;
// if not, the group is idle again.
func (g *Group[T]) commit(ctx context.Context) (more bool) {
	g.mu.Lock()
	batch := g.pending
	g.pending = nil
	g.mu.Unlock()
	vs := make([]T, len(batch))
	for i, it := range batch {
		vs[i] = it.v
	}
	d := g.Timeout
	if d <= 0 {
		d = 30 * time.Second
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), d)
	err := g.Commit(cctx, vs)
	cancel()
	for _, it := range batch {
		it.done <- err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.pending) == 0 {
		g.busy = false
		return false
	}
	return true
}

// Idle reports whether no commit runs and nothing waits.
func (g *Group[T]) Idle() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return !g.busy && len(g.pending) == 0
}
