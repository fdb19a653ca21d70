package ratelimit

import (
	"sync"
	"time"
)

// Every lets one report through per interval and counts the ones it holds
// back: a log line about refused requests is written once per interval
// with how many there were, however many requests a stranger sends. The
// zero value with an Interval set is ready; it is safe for concurrent use.
type Every struct {
	Interval time.Duration

	mu   sync.Mutex
	last time.Time
	held uint64
}

// Tick counts an event at now. It reports whether to tell of it now, and
// if so how many events (this one included) the report stands for.
func (e *Every) Tick(now time.Time) (n uint64, report bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.held++
	if !e.last.IsZero() && now.Sub(e.last) < e.Interval {
		return 0, false
	}
	n, e.held, e.last = e.held, 0, now
	return n, true
}
