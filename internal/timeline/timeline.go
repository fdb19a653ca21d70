// Package timeline records what happens to each machine: DHCP, TFTP and HTTP
// requests, syslog lines, callbacks and state changes. Protocol handlers
// hand events over without waiting; one goroutine works out which host each
// belongs to and writes them to the store in batches, so recording never
// slows a DHCP reply or a TFTP transfer.
//
// Only events that belong to a host are stored. Who a request belongs to is
// decided by its address alone (install.Service.HostOf, over the boot
// index and the leases): never by a MAC, host name or token a client names.
// Events that match no host are counted and kept in a small ring for the
// "unknown clients" view, never written per event: anyone can send them.
package timeline

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// Store is where events go.
type Store interface {
	AppendEvents(ctx context.Context, evs []store.Event) error
	PruneEvents(ctx context.Context, keep int, before time.Time) (int64, error)
}

// Attributor says which host an address belongs to ("" for none).
type Attributor interface {
	HostOf(ctx context.Context, a netip.Addr) string
}

// Recorder batches events into the store.
type Recorder struct {
	st   Store
	who  Attributor
	log  *slog.Logger
	ch   chan store.Event
	Keep int           // events kept per host
	Age  time.Duration // and for how long

	dropped atomic.Int64
	mu      sync.Mutex
	subs    map[chan store.Event]struct{}
	obs     []func(store.Event)
	unknown unknownRing
}

// New makes a Recorder; call Run to start writing. who may be nil when
// every event names its host.
func New(st Store, who Attributor, log *slog.Logger) *Recorder {
	return &Recorder{st: st, who: who, log: log, ch: make(chan store.Event, 8192), Keep: 5000, Age: 30 * 24 * time.Hour, subs: map[chan store.Event]struct{}{}}
}

// Record queues an event. Set Data["client"] to the client's address to
// have the host worked out from it. It never blocks: when the queue is full
// the event is dropped and counted.
func (r *Recorder) Record(e store.Event) {
	if r == nil {
		return
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	select {
	case r.ch <- e:
	default:
		r.dropped.Add(1)
	}
}

// Dropped is how many events were lost to a full queue.
func (r *Recorder) Dropped() int64 { return r.dropped.Load() }

// Observe has f called once for every event, stored or unmatched, after
// its host is worked out (metrics). Call it before Run; f must be safe for
// concurrent use.
func (r *Recorder) Observe(f func(store.Event)) {
	r.mu.Lock()
	r.obs = append(r.obs, f)
	r.mu.Unlock()
}

// Subscribe returns a channel of events as they are stored, for live views.
// A slow subscriber misses events rather than stalling the recorder.
func (r *Recorder) Subscribe() (<-chan store.Event, func()) {
	c := make(chan store.Event, 256)
	r.mu.Lock()
	r.subs[c] = struct{}{}
	r.mu.Unlock()
	return c, func() {
		r.mu.Lock()
		delete(r.subs, c)
		r.mu.Unlock()
	}
}

// Run writes events until ctx ends, then flushes what is queued.
func (r *Recorder) Run(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	prune := time.NewTicker(time.Hour)
	defer prune.Stop()
	var batch []store.Event
	flush := func(ctx context.Context) {
		if len(batch) == 0 {
			return
		}
		// Not on Run's context: a tick or a full batch may be taken
		// after the stop, and what is queued must still be written.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		kept := batch[:0]
		for _, e := range coalesce(batch) {
			if e.Host == "" {
				e.Host = r.hostFor(ctx, e)
			}
			if e.Host == "" {
				r.unknown.add(e)
				r.observe(e)
				continue
			}
			kept = append(kept, e)
		}
		if len(kept) > 0 {
			if err := r.st.AppendEvents(ctx, kept); err != nil {
				r.log.Error("timeline: events lost", "n", len(kept), "err", err)
			} else {
				r.Publish(kept...)
			}
		}
		batch = batch[:0]
	}
	for {
		select {
		case e := <-r.ch:
			batch = append(batch, e)
			if len(batch) >= 512 {
				flush(ctx)
			}
		case <-tick.C:
			flush(ctx)
		case <-prune.C:
			if n, err := r.st.PruneEvents(ctx, r.Keep, time.Now().Add(-r.Age)); err != nil {
				r.log.Warn("timeline: prune failed", "err", err)
			} else if n > 0 {
				r.log.Info("timeline: pruned old events", "n", n)
			}
		case <-ctx.Done():
		drain:
			for {
				select {
				case e := <-r.ch:
					batch = append(batch, e)
				default:
					break drain
				}
			}
			flush(ctx)
			return
		}
	}
}

// coalesce merges the events of a batch (100 ms) that repeat one another
// (the same kind, detail, client and status, and the same host if named)
// into the first of them, with data "count": a client fetching one URL in a
// loop makes ten events a second, not thousands, and is attributed once.
func coalesce(batch []store.Event) []store.Event {
	type key struct {
		host, kind, detail, client string
		status                     any
	}
	seen := make(map[key]int, len(batch))
	out := batch[:0]
	for _, e := range batch {
		client, _ := e.Data["client"].(string)
		k := key{e.Host, e.Kind, e.Detail, client, e.Data["status"]}
		if i, ok := seen[k]; ok {
			n, _ := out[i].Data["count"].(int)
			out[i].Data["count"] = max(n, 1) + 1
			continue
		}
		seen[k] = len(out)
		out = append(out, e)
	}
	return out
}

// Publish shows stored events to observers and live views: those the
// recorder wrote, and those written elsewhere (the lifecycle's, which are
// written before the change they record is reported done).
func (r *Recorder) Publish(evs ...store.Event) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range evs {
		for _, f := range r.obs {
			f(e)
		}
		for c := range r.subs {
			select {
			case c <- e:
			default:
			}
		}
	}
}

func (r *Recorder) observe(e store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, f := range r.obs {
		f(e)
	}
}

// hostFor attributes an event to a host by the client address it carries.
func (r *Recorder) hostFor(ctx context.Context, e store.Event) string {
	s, _ := e.Data["client"].(string)
	a, err := netip.ParseAddr(s)
	if err != nil || r.who == nil {
		return ""
	}
	return r.who.HostOf(ctx, a)
}

// Unknown returns the latest events that matched no host, oldest first,
// and how many there have been since start, by kind.
func (r *Recorder) Unknown() ([]store.Event, map[string]uint64) {
	return r.unknown.snapshot()
}

// unknownRing keeps the last ringSize unmatched events and counts them all.
type unknownRing struct {
	mu     sync.Mutex
	ring   []store.Event
	next   int
	counts map[string]uint64
}

const ringSize = 256

// maxDetail bounds what the ring keeps of an event's text.
const maxDetail = 512

func (u *unknownRing) add(e store.Event) {
	if len(e.Detail) > maxDetail {
		e.Detail = e.Detail[:maxDetail] + "…"
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.counts == nil {
		u.counts = map[string]uint64{}
	}
	n, _ := e.Data["count"].(int)
	u.counts[e.Kind] += uint64(max(n, 1))
	if len(u.ring) < ringSize {
		u.ring = append(u.ring, e)
		return
	}
	u.ring[u.next] = e
	u.next = (u.next + 1) % ringSize
}

func (u *unknownRing) snapshot() ([]store.Event, map[string]uint64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	out := make([]store.Event, 0, len(u.ring))
	out = append(out, u.ring[u.next:]...)
	out = append(out, u.ring[:u.next]...)
	counts := make(map[string]uint64, len(u.counts))
	for k, v := range u.counts {
		counts[k] = v
	}
	return out, counts
}
