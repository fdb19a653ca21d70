// Package ratelimit bounds how fast unauthenticated senders may make
// kickstand work or store something: token buckets per source (a MAC, an
// address) and one for all sources together.
//
// The per-source buckets live in a fixed table indexed by a hash of the
// key, so memory does not grow with the number of sources a flood invents;
// two sources sharing a slot share a bucket, which errs towards limiting,
// and the global bucket bounds the total either way.
package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// Limits are the rates. A zero rate means no limit of that kind.
type Limits struct {
	// PerSource is the sustained rate (per second) one source may have,
	// PerSourceBurst how many it may spend at once.
	PerSource      float64
	PerSourceBurst int
	// Global is the sustained rate for all sources together.
	Global      float64
	GlobalBurst int
	// Table is how many per-source buckets there are (default 4096).
	Table int
}

// Limiter checks events against Limits. The zero value allows everything;
// one Limiter may be used from many goroutines.
type Limiter struct {
	mu      sync.Mutex
	lim     Limits
	seed    maphash.Seed
	slots   []slot
	global  bucket
	refused atomic.Uint64
}

type slot struct {
	hash uint64
	b    bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New returns a Limiter for l.
func New(l Limits) *Limiter {
	if l.Table <= 0 {
		l.Table = 4096
	}
	if l.PerSourceBurst < 1 {
		l.PerSourceBurst = 1
	}
	if l.GlobalBurst < 1 {
		l.GlobalBurst = 1
	}
	return &Limiter{lim: l, seed: maphash.MakeSeed(), slots: make([]slot, l.Table)}
}

// take refills b at rate up to burst and takes one token if there is one.
func (b *bucket) take(now time.Time, rate float64, burst int) bool {
	if b.at.IsZero() {
		b.tokens, b.at = float64(burst), now
	}
	if dt := now.Sub(b.at).Seconds(); dt > 0 {
		b.tokens = min(float64(burst), b.tokens+dt*rate)
		b.at = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// Allow reports whether source may do one more thing now, and counts it
// against both limits when it may.
func (l *Limiter) Allow(source string, now time.Time) bool {
	if l == nil || l.slots == nil {
		return true
	}
	h := maphash.String(l.seed, source)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.PerSource > 0 {
		s := &l.slots[h%uint64(len(l.slots))]
		if s.hash != h {
			// A new source takes the slot over with a full bucket;
			// the global bucket still bounds what that lets through.
			*s = slot{hash: h}
		}
		if !s.b.take(now, l.lim.PerSource, l.lim.PerSourceBurst) {
			l.refused.Add(1)
			return false
		}
	}
	if l.lim.Global > 0 && !l.global.take(now, l.lim.Global, l.lim.GlobalBurst) {
		l.refused.Add(1)
		return false
	}
	return true
}

// Refused is how many events Allow refused.
func (l *Limiter) Refused() uint64 {
	if l == nil {
		return 0
	}
	return l.refused.Load()
}
