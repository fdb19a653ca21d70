// Package timeline records what happens to each machine: DHCP, TFTP and HTTP
// requests, syslog lines, callbacks and state changes. Protocol handlers
// hand events over without waiting; one goroutine works out which host each
// belongs to and writes them to the store in batches, so recording never
// slows a DHCP reply or a TFTP transfer.
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

// Recorder batches events into the store.
type Recorder struct {
	st   store.Store
	log  *slog.Logger
	ch   chan store.Event
	Keep int           // events kept per host
	Age  time.Duration // and for how long

	dropped atomic.Int64
	mu      sync.Mutex
	subs    map[chan store.Event]struct{}
	// seen remembers which host an address last belonged to, learnt from
	// events that name their host (by MAC, token or static address), so a
	// machine with an address kickstand did not hand out (proxyDHCP beside
	// another server, a dynamic lease elsewhere) is still followed. Only
	// Run's goroutine touches it.
	seen map[netip.Addr]seenHost
}

type seenHost struct {
	host string
	at   time.Time
}

// maxSeen bounds the address memory; past it, it starts afresh.
const maxSeen = 1 << 16

// New makes a Recorder; call Run to start writing.
func New(st store.Store, log *slog.Logger) *Recorder {
	return &Recorder{st: st, log: log, ch: make(chan store.Event, 8192), Keep: 5000, Age: 30 * 24 * time.Hour, subs: map[chan store.Event]struct{}{}}
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
		for i := range batch {
			if batch[i].Host == "" {
				batch[i].Host = r.HostFor(ctx, batch[i])
			}
			r.remember(batch[i])
		}
		if err := r.st.AppendEvents(ctx, batch); err != nil {
			r.log.Error("timeline: events lost", "n", len(batch), "err", err)
		} else {
			r.publish(batch)
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
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			flush(fctx)
			cancel()
			return
		}
	}
}

func (r *Recorder) publish(evs []store.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.subs {
		for _, e := range evs {
			select {
			case c <- e:
			default:
			}
		}
	}
}

func (r *Recorder) remember(e store.Event) {
	s, _ := e.Data["client"].(string)
	a, err := netip.ParseAddr(s)
	if e.Host == "" || err != nil || a.IsUnspecified() {
		return
	}
	if r.seen == nil || len(r.seen) >= maxSeen {
		r.seen = map[netip.Addr]seenHost{}
	}
	r.seen[a.Unmap()] = seenHost{e.Host, e.At}
}

// HostFor attributes an event to a host: by its MAC, else by the client
// address (a static address, a DHCP lease, then the host last seen there
// within the hour).
func (r *Recorder) HostFor(ctx context.Context, e store.Event) string {
	if mac, _ := e.Data["mac"].(string); mac != "" {
		if h, err := r.st.HostByMAC(ctx, mac); err == nil {
			return h.Name
		}
	}
	s, _ := e.Data["client"].(string)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	if h, err := r.st.HostByAddr(ctx, a); err == nil {
		return h.Name
	}
	if a.Is4() {
		if l, err := r.st.Lease(ctx, a); err == nil && l.Host != "" {
			return l.Host
		}
	}
	if s, ok := r.seen[a]; ok && e.At.Sub(s.at) < time.Hour {
		return s.host
	}
	return ""
}
