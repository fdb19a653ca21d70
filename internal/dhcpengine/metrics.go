package dhcpengine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register exports what the engine counts itself and the timeline cannot
// see: packets dropped by a full queue or by the rate limits, clients
// refused or answered from memory while the lease store is down, whether
// it is down, and events of clients that match no host (which are counted,
// not recorded one by one). The names carry the family:
// kickstand_dhcp4_dropped_total, kickstand_dhcp6_dropped_total...
func (e *Engine) Register(reg prometheus.Registerer) error {
	name := func(s string) string { return fmt.Sprintf("kickstand_dhcp%d_%s", e.opt.Family, s) }
	v := fmt.Sprintf("DHCPv%d", e.opt.Family)
	counter := func(n, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name(n), Help: v + " " + help},
			func() float64 { return float64(f(e.Stats())) })
	}
	for _, c := range []prometheus.Collector{
		counter("dropped_total", "packets dropped because every worker was busy.", func(s Stats) uint64 { return s.Dropped }),
		counter("rate_limited_total", "packets of clients without a reservation dropped by the rate limits.", func(s Stats) uint64 { return s.Limited }),
		counter("refused_total", "new clients refused while the lease store was unavailable.", func(s Stats) uint64 { return s.Refused }),
		counter("from_memory_total", "renewals answered from memory while the lease store was unavailable.", func(s Stats) uint64 { return s.FromMemory }),
		counter("unmatched_events_total", "exchange steps of clients that match no inventory host (counted, not recorded).", func(s Stats) uint64 { return s.Unmatched }),
		counter("malformed_total", "packets that did not parse.", func(s Stats) uint64 { return s.Malformed }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name("store_down"), Help: "1 while the " + v + " server cannot reach the lease store."},
			func() float64 {
				if e.Stats().StoreDown {
					return 1
				}
				return 0
			}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("register %s metrics: %w", v, err)
		}
	}
	return nil
}
