// Package metrics exposes kickstand's Prometheus metrics. Everything except
// the hosts-per-state gauge is derived from timeline events, so protocol
// servers need no metrics code of their own and the numbers agree with what
// the timeline and the diagnosis say.
//
// Labels only ever take values from fixed sets: no host names, paths,
// addresses or tokens, so cardinality is bounded and no secret can reach a
// scrape.
package metrics

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/timeline"
)

// Metrics holds kickstand's collectors in a registry of its own.
type Metrics struct {
	reg *prometheus.Registry
	st  store.Store

	dhcp          *prometheus.CounterVec
	tftpTransfers *prometheus.CounterVec
	tftpBytes     prometheus.Counter
	httpRequests  *prometheus.CounterVec
	httpBytes     *prometheus.CounterVec
	started       prometheus.Counter
	built         prometheus.Counter
	failed        prometheus.Counter
	duration      prometheus.Histogram

	mu sync.Mutex
	// firstDHCP is each host's first DHCP event since it was last put in
	// install state or last built: where an install's duration starts.
	firstDHCP map[string]time.Time
}

// New makes the metrics; st is read at scrape time for hosts per state.
func New(st store.Store) *Metrics {
	m := &Metrics{
		reg:       prometheus.NewRegistry(),
		st:        st,
		firstDHCP: map[string]time.Time{},
		dhcp: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickstand_dhcp_packets_total",
			Help: "DHCP messages by address family, message type and result: received (from a client), sent (an answer) or refused (a NAK).",
		}, []string{"family", "type", "result"}),
		tftpTransfers: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickstand_tftp_transfers_total",
			Help: "TFTP read transfers by result: completed, probe (a client that only asked for the size, as UEFI firmware does first) or aborted.",
		}, []string{"result"}),
		tftpBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickstand_tftp_sent_bytes_total",
			Help: "Bytes sent in TFTP read transfers.",
		}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickstand_http_requests_total",
			Help: "Classified HTTP requests (boot scripts, kickstarts, callbacks, loaders, kernels, initrds, stage2, repository metadata, packages...) by class and status code class.",
		}, []string{"class", "code"}),
		httpBytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kickstand_http_sent_bytes_total",
			Help: "Bytes sent in answers to classified HTTP requests, by class.",
		}, []string{"class"}),
		started: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickstand_installs_started_total",
			Help: "Hosts put in install state.",
		}),
		built: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickstand_installs_built_total",
			Help: "Installs that reported success (the built callback).",
		}),
		failed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kickstand_installs_failed_total",
			Help: "Installs that reported failure (the failed callback).",
		}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "kickstand_install_duration_seconds",
			Help: "Time from a host's first DHCP message of an install to its built callback.",
			// From a minimal VM install (a few minutes) to a large
			// bare-metal one over a slow mirror.
			Buckets: []float64{60, 120, 300, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10800, 14400, 21600},
		}),
	}
	m.reg.MustRegister(m.dhcp, m.tftpTransfers, m.tftpBytes, m.httpRequests, m.httpBytes,
		m.started, m.built, m.failed, m.duration, newHostsCollector(st),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text (or negotiated) format.
// A store failure while counting hosts shows as kickstand_store_up 0; the
// other metrics are still served.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// Registry is for tests and for embedding more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe counts one timeline event. It must see each event once.
func (m *Metrics) Observe(e store.Event) {
	kind, sub, _ := strings.Cut(e.Kind, ".")
	switch kind {
	case "dhcp", "dhcp6":
		family := "4"
		if kind == "dhcp6" || num(e.Data["family"]) == 6 {
			family = "6"
		}
		typ, result := dhcpLabels(sub)
		m.dhcp.WithLabelValues(family, typ, result).Inc()
		if e.Host != "" {
			m.mu.Lock()
			if _, ok := m.firstDHCP[e.Host]; !ok {
				m.firstDHCP[e.Host] = e.At
			}
			m.mu.Unlock()
		}
	case "tftp":
		if sub != "file" {
			return
		}
		result := "aborted"
		switch {
		case e.Data["completed"] == true:
			result = "completed"
		case e.Data["probe"] == true:
			result = "probe"
		}
		m.tftpTransfers.WithLabelValues(result).Inc()
		if b := num(e.Data["bytes"]); b > 0 {
			m.tftpBytes.Add(b)
		}
	case "http":
		class := httpClass(sub)
		m.httpRequests.WithLabelValues(class, codeClass(num(e.Data["status"]))).Inc()
		if b := num(e.Data["bytes"]); b > 0 {
			m.httpBytes.WithLabelValues(class).Add(b)
		}
	case "callback":
		switch sub {
		case "built":
			m.built.Inc()
			m.mu.Lock()
			first, ok := m.firstDHCP[e.Host]
			delete(m.firstDHCP, e.Host)
			m.mu.Unlock()
			if ok && e.Host != "" && !e.At.Before(first) {
				m.duration.Observe(e.At.Sub(first).Seconds())
			}
		case "failed":
			m.failed.Inc()
		}
	case "state":
		if s, _ := e.Data["to"].(string); s == inventory.StateInstall {
			m.started.Inc()
			m.mu.Lock()
			delete(m.firstDHCP, e.Host)
			m.mu.Unlock()
		}
	}
}

// Attach counts every event rec sees from now on, each once: those it
// stores, those written by the lifecycle (published to it), and those that
// matched no host, which are not stored at all.
func (m *Metrics) Attach(rec *timeline.Recorder) {
	rec.Observe(m.Observe)
	m.reg.MustRegister(unmatchedCollector{rec: rec, desc: prometheus.NewDesc("kickstand_unmatched_events_total",
		"Events (requests, syslog lines, DHCP messages) that matched no host, by kind. They are not stored; the newest are in GET /api/v1/unknown.",
		[]string{"kind"}, nil)})
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "kickstand_timeline_dropped_total",
		Help: "Timeline events dropped because the recorder's queue was full."}, func() float64 { return float64(rec.Dropped()) }))
}

type unmatchedCollector struct {
	rec  *timeline.Recorder
	desc *prometheus.Desc
}

func (c unmatchedCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c unmatchedCollector) Collect(ch chan<- prometheus.Metric) {
	_, counts := c.rec.Unknown()
	for k, v := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(v), k)
	}
}

// dhcpLabels maps a DHCP (v4 or v6) message type to its labels; anything
// else is "other", so a label never takes an unexpected value.
func dhcpLabels(typ string) (string, string) {
	switch typ {
	case "nak":
		return typ, "refused"
	case "offer", "ack", "advertise", "reply", "reconfigure":
		return typ, "sent"
	case "discover", "request", "release", "decline", "inform",
		"solicit", "confirm", "renew", "rebind", "information-request":
		return typ, "received"
	}
	return "other", "received"
}

func httpClass(c string) string {
	switch c {
	case "script", "config", "kickstart", "callback", "loader", "kernel", "initrd",
		"overlay", "stage2", "updates", "repodata", "package", "file":
		return c
	}
	return "other"
}

func codeClass(status float64) string {
	if status < 100 || status > 599 {
		return "unknown"
	}
	return string(rune('0'+int(status)/100)) + "xx"
}

// num reads a number from event data: an int as recorded, or a float64
// after a JSON round trip through the store.
func num(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int:
		return float64(x)
	case int64:
		return float64(x)
	case uint64:
		return float64(x)
	case int32:
		return float64(x)
	}
	return 0
}

// hostsCollector counts hosts per netboot state when scraped, so the gauge
// is never stale and nothing needs updating on every state change.
type hostsCollector struct {
	st                store.Store
	hostsDesc, upDesc *prometheus.Desc
}

func newHostsCollector(st store.Store) hostsCollector {
	return hostsCollector{st: st,
		hostsDesc: prometheus.NewDesc("kickstand_hosts", "Hosts by netboot state.", []string{"state"}, nil),
		upDesc:    prometheus.NewDesc("kickstand_store_up", "1 if the store answered the hosts query of this scrape, else 0.", nil, nil),
	}
}

func (c hostsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.hostsDesc
	ch <- c.upDesc
}

func (c hostsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hosts, err := c.st.Hosts(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(c.upDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.upDesc, prometheus.GaugeValue, 1)
	n := map[string]float64{inventory.StateInstall: 0, inventory.StateLocal: 0, inventory.StateMenu: 0}
	for _, h := range hosts {
		n[h.State]++
	}
	for s, v := range n {
		ch <- prometheus.MustNewConstMetric(c.hostsDesc, prometheus.GaugeValue, v, s)
	}
}
