package dhcp4

import (
	"hash/maphash"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Limits bound how fast clients without a reservation may use the server.
// Reserved hosts are never limited: a starvation attack (thousands of
// random MACs) may exhaust the dynamic pool, but it must not stop the
// machines the inventory is about from booting.
//
// Every packet from an unreserved MAC in server mode costs a store
// transaction (an offer or a lease), so without a bound a single sender
// can keep the store busy and drain the pool as fast as it can write
// packets. The per-MAC bucket stops one looping client (a broken NIC ROM)
// from monopolising the server; the global bucket bounds the total, which
// is what matters against random MACs.
type Limits struct {
	// Off disables both limits (benchmarks of raw DORA/s with random MACs).
	Off bool
	// PerMAC is the sustained packets per second one unreserved MAC may
	// have handled, PerMACBurst how many it may send at once. A normal
	// DORA is two packets; firmware retries a few times more.
	PerMAC      float64
	PerMACBurst int
	// Global is the sustained packets per second handled for all
	// unreserved MACs together, GlobalBurst the burst.
	Global      float64
	GlobalBurst int
	// Table is how many MACs the per-MAC limit remembers. It is a fixed
	// table, so memory does not grow with the number of MACs seen; when
	// two MACs share a slot the newer one takes it over (and starts with
	// a full bucket), which the global limit still bounds.
	Table int
	// LogEvery is the least time between two "rate limited" log lines.
	LogEvery time.Duration
}

// DefaultLimits suit a provisioning network: a rack of unknown machines
// powering on together (a few hundred DORAs in a second) passes, while a
// flood is held to about 2,000 pool operations per second.
func DefaultLimits() Limits {
	return Limits{PerMAC: 2, PerMACBurst: 10, Global: 2000, GlobalBurst: 4000, Table: 1 << 14, LogEvery: 10 * time.Second}
}

// limiter is the token buckets. One mutex guards it: each check is a few
// arithmetic operations, far cheaper than the store transaction it saves.
type limiter struct {
	mu     sync.Mutex
	lim    Limits
	seed   maphash.Seed
	slots  []macBucket
	global bucket

	limited  atomic.Uint64 // packets refused, for Stats
	sinceLog uint64        // refused since the last log line
	lastLog  time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
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

type macBucket struct {
	key uint64 // hash of the MAC; 0 is an empty slot
	bucket
}

func newLimiter(l Limits) *limiter {
	d := DefaultLimits()
	if l.PerMAC <= 0 {
		l.PerMAC = d.PerMAC
	}
	if l.PerMACBurst <= 0 {
		l.PerMACBurst = d.PerMACBurst
	}
	if l.Global <= 0 {
		l.Global = d.Global
	}
	if l.GlobalBurst <= 0 {
		l.GlobalBurst = d.GlobalBurst
	}
	if l.Table <= 0 {
		l.Table = d.Table
	}
	if l.LogEvery <= 0 {
		l.LogEvery = d.LogEvery
	}
	return &limiter{lim: l, seed: maphash.MakeSeed(), slots: make([]macBucket, l.Table)}
}

// allow reports whether a packet from an unreserved mac may be handled now.
// A refusal is counted, and logged at most once per LogEvery with the
// number refused since the last line.
func (l *limiter) allow(mac string, now time.Time, log *slog.Logger) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lim.Off {
		return true
	}
	key := maphash.String(l.seed, mac) | 1 // never 0, the empty slot
	s := &l.slots[key%uint64(len(l.slots))]
	if s.key != key {
		*s = macBucket{key: key}
	}
	// The MAC's own bucket first: a looping client must not use up the
	// global budget that other clients need.
	why := ""
	switch {
	case !s.take(now, l.lim.PerMAC, l.lim.PerMACBurst):
		why = "per-MAC"
	case !l.global.take(now, l.lim.Global, l.lim.GlobalBurst):
		why = "global"
	default:
		return true
	}
	l.limited.Add(1)
	l.sinceLog++
	if now.Sub(l.lastLog) >= l.lim.LogEvery {
		log.Warn("DHCP rate limit: packets from clients without a reservation dropped",
			"dropped", l.sinceLog, "last_mac", mac, "limit", why,
			"per_mac_rate", l.lim.PerMAC, "global_rate", l.lim.Global)
		l.sinceLog, l.lastLog = 0, now
	}
	return false
}

// SetLimits replaces the rate limits of unreserved clients; call it before
// Serve (the config's values, or Limits{Off: true} for benchmarks).
func (s *Server) SetLimits(l Limits) {
	n := newLimiter(l)
	s.limit.Store(n)
}

// admit applies the limits as a packet is read, before it is parsed or
// queued: under a flood, unreserved clients' packets are dropped where
// they cost least, and the worker queue keeps room for reserved hosts'
// packets, which would otherwise be dropped with the flood when it fills.
// Only Ethernet BOOTREQUESTs to port 67 of a full server are limited; the
// MAC is read from chaddr without parsing the packet, and reservations
// from the host index the workers keep (until a worker has built it,
// nothing is limited).
func (s *Server) admit(b []byte, port int) bool {
	if port != serverPort || len(b) < 34 || b[0] != 1 || b[1] != 1 || b[2] != 6 {
		return true
	}
	if cfg := s.opt.Config(); cfg == nil || cfg.DHCP.Mode == "proxy" {
		return true
	}
	ix := s.hosts.Load()
	if ix == nil {
		return true
	}
	mac := net.HardwareAddr(b[28:34]).String()
	if _, ok := ix.byMAC[mac]; ok {
		return true
	}
	return s.limiter().allow(mac, time.Now(), s.log)
}

// limiter returns the server's limiter, making the default one on first
// use so that New needs no change.
func (s *Server) limiter() *limiter {
	if l := s.limit.Load(); l != nil {
		return l
	}
	s.limit.CompareAndSwap(nil, newLimiter(Limits{}))
	return s.limit.Load()
}
