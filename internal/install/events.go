package install

import (
	"context"
	"sync"

	"github.com/kickstand/kickstand/internal/store"
)

// eventLog appends lifecycle events durably, grouping the appends of
// concurrent callers into one store transaction: the first caller commits
// what is waiting, and keeps committing while more arrives; the others
// wait for the commit that holds their events. A boot storm's thousand
// callbacks each append their events; one at a time they were a
// thousand commits in a row (on PostgreSQL, behind one lock that keeps
// event ids in commit order, held through each fsync).
type eventLog struct {
	mu      sync.Mutex
	pending []*appendReq
	busy    bool
}

type appendReq struct {
	evs  []store.Event
	done chan error
}

type eventAppender interface {
	AppendEvents(ctx context.Context, evs []store.Event) error
}

// append returns once evs are durable, or with the error of the commit
// that held them. The caller that finds no commit running makes one; if
// more arrived meanwhile, a goroutine goes on committing them, so no
// caller waits for more than the commit that holds its events.
func (l *eventLog) append(ctx context.Context, st eventAppender, evs []store.Event) error {
	r := &appendReq{evs: evs, done: make(chan error, 1)}
	l.mu.Lock()
	l.pending = append(l.pending, r)
	if l.busy {
		l.mu.Unlock()
		return <-r.done
	}
	l.busy = true
	l.mu.Unlock()
	if l.commit(ctx, st) {
		go l.drain(ctx, st)
	}
	return <-r.done
}

// drain commits until nothing waits.
func (l *eventLog) drain(ctx context.Context, st eventAppender) {
	for l.commit(ctx, st) {
	}
}

// commit appends what waits in one transaction and reports whether more
// arrived meanwhile; if not, the log is idle again.
func (l *eventLog) commit(ctx context.Context, st eventAppender) (more bool) {
	l.mu.Lock()
	batch := l.pending
	l.pending = nil
	l.mu.Unlock()
	var all []store.Event
	for _, b := range batch {
		all = append(all, b.evs...)
	}
	// Bounded, and not by the caller's request: the commit is for all.
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTime)
	err := st.AppendEvents(cctx, all)
	cancel()
	for _, b := range batch {
		b.done <- err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.pending) == 0 {
		l.busy = false
		return false
	}
	return true
}
