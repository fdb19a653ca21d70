package dhcpengine

import (
	"log/slog"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/ratelimit"
)

// Limits bound how fast clients without a reservation may use the server.
// Reserved hosts are never limited: a starvation attack (thousands of
// random MACs) may exhaust the dynamic pool, but it must not stop the
// machines the inventory is about from booting.
//
// Every packet from an unreserved client in server mode costs an address
// from the pool and, for a bind, a store write, so without a bound a single
// sender can keep the store busy and drain the pool as fast as it can write
// packets. The per-client bucket (per MAC on DHCPv4, per DUID on DHCPv6)
// stops one looping client (a broken NIC ROM) from monopolising the
// server; the global bucket bounds the total, which is what matters
// against random MACs or DUIDs.
type Limits struct {
	// Off disables both limits (benchmarks of raw DORA/s with random MACs).
	Off bool
	// PerClient is the sustained packets per second one unreserved client
	// may have handled, PerClientBurst how many it may send at once. A
	// normal DORA or SARR is two packets; firmware retries a few times
	// more.
	PerClient      float64
	PerClientBurst int
	// Global is the sustained packets per second handled for all
	// unreserved clients together, GlobalBurst the burst.
	Global      float64
	GlobalBurst int
	// Table is how many clients the per-client limit remembers. It is a
	// fixed table, so memory does not grow with the number of clients
	// seen; when two share a slot the newer one takes it over (and starts
	// with a full bucket), which the global limit still bounds.
	Table int
	// LogEvery is the least time between two "rate limited" log lines.
	LogEvery time.Duration
}

// DefaultLimits suit a provisioning network: a rack of unknown machines
// powering on together (a few hundred DORAs in a second) passes, while a
// flood is held to about 2,000 pool operations per second.
func DefaultLimits() Limits {
	return Limits{PerClient: 2, PerClientBurst: 10, Global: 2000, GlobalBurst: 4000, Table: 1 << 14, LogEvery: 10 * time.Second}
}

// limiter is the buckets (package ratelimit), with what the DHCP servers
// add: a switch for benchmarks, and a log line per interval, not per
// packet.
type limiter struct {
	lim     Limits
	buckets *ratelimit.Limiter
	logged  *ratelimit.Every
}

func newLimiter(l Limits) *limiter {
	d := DefaultLimits()
	if l.PerClient <= 0 {
		l.PerClient = d.PerClient
	}
	if l.PerClientBurst <= 0 {
		l.PerClientBurst = d.PerClientBurst
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
	return &limiter{lim: l, buckets: ratelimit.New(ratelimit.Limits{PerSource: l.PerClient, PerSourceBurst: l.PerClientBurst,
		Global: l.Global, GlobalBurst: l.GlobalBurst, Table: l.Table}), logged: &ratelimit.Every{Interval: l.LogEvery}}
}

// allow reports whether a packet from an unreserved client may be handled
// now. A refusal is counted, and logged at most once per LogEvery with the
// number refused since the last line.
func (l *limiter) allow(client string, now time.Time, log *slog.Logger) bool {
	if l == nil || l.lim.Off || l.buckets.Allow(client, now) {
		return true
	}
	if n, ok := l.logged.Tick(now); ok {
		log.Warn("DHCP rate limit: packets from clients without a reservation dropped",
			"dropped", n, "last_client", client,
			"per_client_rate", l.lim.PerClient, "global_rate", l.lim.Global)
	}
	return false
}

// limited is how many packets the limits refused.
func (l *limiter) limited() uint64 { return l.buckets.Refused() }

// LimitsFrom is the config's rate_limit over the defaults.
func LimitsFrom(rl inventory.RateLimit) Limits {
	l := DefaultLimits()
	l.Off = rl.Off
	if rl.PerMAC > 0 {
		l.PerClient = rl.PerMAC
	}
	if rl.Global > 0 {
		l.Global, l.GlobalBurst = rl.Global, int(2*rl.Global)
	}
	return l
}
