package metrics

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
	"github.com/kickstand/kickstand/internal/timeline"
)

const secret = "BUILDTOKENSECRET42"

// scrape fetches /metrics as Prometheus does and parses it with the
// Prometheus text parser.
func scrape(t *testing.T, m *Metrics) (map[string]*dto.MetricFamily, []byte) {
	t.Helper()
	w := httptest.NewRecorder()
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.Header.Set("Accept", "text/plain")
	m.Handler().ServeHTTP(w, r)
	if w.Code != 200 {
		t.Fatalf("/metrics = %d %s", w.Code, w.Body)
	}
	body := w.Body.Bytes()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parsing /metrics: %v\n%s", err, body)
	}
	return fams, body
}

// value returns the value of the sample of family name whose labels
// include want (a histogram gives its count).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
next:
	for _, m := range f.Metric {
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				if l.GetName() == k && l.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	t.Errorf("no sample of %s with labels %v", name, want)
	return -1
}

func newStore(t *testing.T) store.Store {
	st := storetest.NewFake()
	if _, err := st.SyncDeclared(context.Background(), storetest.Declared(time.Now())); err != nil {
		t.Fatal(err)
	}
	return st
}

// installEvents is one host's install as the timeline records it, with
// secrets where the protocol servers may put them.
func installEvents(t0 time.Time) []store.Event {
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	return []store.Event{
		{Host: "a", At: at(0), Kind: "state", Data: map[string]any{"from": "local", "to": "install", "by": "cli"}},
		{Host: "a", At: at(10), Kind: "dhcp.discover", Data: map[string]any{"family": 4, "mac": "52:54:00:00:00:0a"}},
		{Host: "a", At: at(10), Kind: "dhcp.offer", Data: map[string]any{"family": 4}},
		{Host: "a", At: at(11), Kind: "dhcp.request", Data: map[string]any{"family": 4}},
		{Host: "a", At: at(11), Kind: "dhcp.ack", Data: map[string]any{"family": 4}},
		{Host: "a", At: at(12), Kind: "tftp.file", Data: map[string]any{"file": "undionly.kpxe", "bytes": 0, "completed": false, "probe": true}},
		{Host: "a", At: at(12), Kind: "tftp.file", Data: map[string]any{"file": "undionly.kpxe", "bytes": 70000, "completed": true}},
		{Host: "a", At: at(13), Kind: "tftp.file", Data: map[string]any{"file": "x", "bytes": 512, "completed": false}},
		{Host: "a", At: at(14), Kind: "http.script", Data: map[string]any{"path": "/boot.ipxe", "status": 200, "bytes": 300}},
		{Host: "a", At: at(15), Kind: "http.kernel", Data: map[string]any{"status": 200, "bytes": 12_000_000}},
		{Host: "a", At: at(16), Kind: "http.kickstart", Detail: "GET /ks/" + secret, Data: map[string]any{"path": "/ks/" + secret, "status": 200, "bytes": 4000}},
		{Host: "a", At: at(17), Kind: "http.file", Data: map[string]any{"status": 404, "bytes": 19}},
		{Host: "a", At: at(18), Kind: "http." + secret, Data: map[string]any{"status": 200, "bytes": 1}},
		{Host: "a", At: at(19), Kind: "dhcp." + secret, Data: map[string]any{"family": 6}},
		{Host: "a", At: at(20), Kind: "dhcp.nak", Data: map[string]any{"family": 4}},
		{Host: "a", At: at(21), Kind: "syslog", Detail: "anaconda: ks=http://x/ks/" + secret},
		{Host: "a", At: at(610), Kind: "callback.built", Data: map[string]any{"client": "192.0.2.10"}},
		{Host: "a", At: at(611), Kind: "state", Data: map[string]any{"from": "install", "to": "local", "by": "callback.built"}},
		{Host: "b", At: at(700), Kind: "callback.failed", Data: map[string]any{"log_tail": "password " + secret}},
	}
}

func TestObserve(t *testing.T) {
	st := newStore(t)
	m := New(st)
	t0 := time.Now()
	for _, e := range installEvents(t0) {
		m.Observe(e)
	}
	fams, body := scrape(t, m)
	if bytes.Contains(body, []byte(secret)) {
		t.Errorf("a secret reached /metrics:\n%s", body)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"kickstand_dhcp_packets_total", map[string]string{"family": "4", "type": "discover", "result": "received"}, 1},
		{"kickstand_dhcp_packets_total", map[string]string{"family": "4", "type": "offer", "result": "sent"}, 1},
		{"kickstand_dhcp_packets_total", map[string]string{"family": "4", "type": "ack", "result": "sent"}, 1},
		{"kickstand_dhcp_packets_total", map[string]string{"family": "4", "type": "nak", "result": "refused"}, 1},
		{"kickstand_dhcp_packets_total", map[string]string{"family": "6", "type": "other"}, 1},
		{"kickstand_tftp_transfers_total", map[string]string{"result": "completed"}, 1},
		{"kickstand_tftp_transfers_total", map[string]string{"result": "probe"}, 1},
		{"kickstand_tftp_transfers_total", map[string]string{"result": "aborted"}, 1},
		{"kickstand_tftp_sent_bytes_total", nil, 70512},
		{"kickstand_http_requests_total", map[string]string{"class": "kernel", "code": "2xx"}, 1},
		{"kickstand_http_requests_total", map[string]string{"class": "kickstart", "code": "2xx"}, 1},
		{"kickstand_http_requests_total", map[string]string{"class": "file", "code": "4xx"}, 1},
		{"kickstand_http_requests_total", map[string]string{"class": "other", "code": "2xx"}, 1},
		{"kickstand_http_sent_bytes_total", map[string]string{"class": "kernel"}, 12_000_000},
		{"kickstand_installs_started_total", nil, 1},
		{"kickstand_installs_built_total", nil, 1},
		{"kickstand_installs_failed_total", nil, 1},
		{"kickstand_install_duration_seconds", nil, 1},
		{"kickstand_hosts", map[string]string{"state": "install"}, 1},
		{"kickstand_hosts", map[string]string{"state": "local"}, 1},
		{"kickstand_hosts", map[string]string{"state": "menu"}, 0},
		{"kickstand_store_up", nil, 1},
	} {
		if got := value(t, fams, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// First DHCP (t0+10 s) to built (t0+610 s).
	h := fams["kickstand_install_duration_seconds"].Metric[0].Histogram
	if h.GetSampleSum() != 600 {
		t.Errorf("install duration sum = %v, want 600", h.GetSampleSum())
	}
	for _, b := range h.Bucket {
		if want := uint64(0); b.GetUpperBound() >= 600 {
			want = 1
			if b.GetCumulativeCount() != want {
				t.Errorf("bucket le=%v has %d", b.GetUpperBound(), b.GetCumulativeCount())
			}
		} else if b.GetCumulativeCount() != want {
			t.Errorf("bucket le=%v has %d", b.GetUpperBound(), b.GetCumulativeCount())
		}
	}

	// A second install of the same host is timed from its own first DHCP,
	// not from the first install's, and a host's later DHCP (a reboot
	// into the installed system) does not restart the clock.
	t1 := t0.Add(time.Hour)
	for _, e := range []store.Event{
		{Host: "a", At: t1, Kind: "dhcp.discover", Data: map[string]any{"family": 4}}, // local boot
		{Host: "a", At: t1.Add(time.Minute), Kind: "state", Data: map[string]any{"to": "install"}},
		{Host: "a", At: t1.Add(2 * time.Minute), Kind: "dhcp.discover", Data: map[string]any{"family": 4}},
		{Host: "a", At: t1.Add(3 * time.Minute), Kind: "dhcp.discover", Data: map[string]any{"family": 4}},
		{Host: "a", At: t1.Add(32 * time.Minute), Kind: "callback.built"},
		{Host: "a", At: t1.Add(33 * time.Minute), Kind: "callback.built"}, // a repeat: no second sample
	} {
		m.Observe(e)
	}
	fams, _ = scrape(t, m)
	h = fams["kickstand_install_duration_seconds"].Metric[0].Histogram
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 600+1800 {
		t.Errorf("after a second install: %d samples, sum %v; want 2, 2400", h.GetSampleCount(), h.GetSampleSum())
	}
}

// TestPromtool checks the exposition with Prometheus's own linter.
func TestPromtool(t *testing.T) {
	promtool := needTool(t, "promtool")
	m := New(newStore(t))
	for _, e := range installEvents(time.Now()) {
		m.Observe(e)
	}
	_, body := scrape(t, m)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// A store that fails is reported, and the other metrics are still served.
func TestBrokenStore(t *testing.T) {
	m := New(storetest.Broken{})
	m.Observe(store.Event{Host: "a", Kind: "callback.failed"})
	fams, _ := scrape(t, m)
	if got := value(t, fams, "kickstand_store_up", nil); got != 0 {
		t.Errorf("kickstand_store_up = %v on a broken store", got)
	}
	if _, ok := fams["kickstand_hosts"]; ok {
		t.Error("hosts per state reported from a broken store")
	}
	if got := value(t, fams, "kickstand_installs_failed_total", nil); got != 1 {
		t.Errorf("failed = %v", got)
	}
}

// Attach counts what the recorder sees: events it stores, events
// published to it (state changes, written by the lifecycle), and events that
// matched no host (not stored), each once.
func TestAttach(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := newStore(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	rec := timeline.New(st, nil, log)
	m := New(st)
	m.Attach(rec)
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	waitFor := func(what string, ok func(map[string]*dto.MetricFamily) bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if fams, _ := scrape(t, m); ok(fams) {
				return
			}
		}
		t.Fatalf("metrics never showed %s", what)
	}
	rec.Publish(store.Event{Host: "a", At: time.Now(), Kind: "state", Data: map[string]any{"from": "local", "to": inventory.StateInstall}})
	rec.Record(store.Event{Host: "a", Kind: "dhcp.discover", Data: map[string]any{"family": 4}})
	rec.Record(store.Event{Host: "a", Kind: "callback.built", At: time.Now().Add(90 * time.Second)})
	// No host: counted as unmatched, and as a DHCP packet, never stored.
	rec.Record(store.Event{Kind: "dhcp.discover", Data: map[string]any{"family": 4, "client": "198.51.100.7"}})
	waitFor("the install", func(f map[string]*dto.MetricFamily) bool {
		h, ok := f["kickstand_install_duration_seconds"]
		_, um := f["kickstand_unmatched_events_total"]
		return ok && h.Metric[0].Histogram.GetSampleCount() == 1 && um
	})
	fams, _ := scrape(t, m)
	if got := value(t, fams, "kickstand_installs_started_total", nil); got != 1 {
		t.Errorf("started = %v", got)
	}
	if got := value(t, fams, "kickstand_unmatched_events_total", map[string]string{"kind": "dhcp.discover"}); got != 1 {
		t.Errorf("unmatched = %v", got)
	}
	if got := value(t, fams, "kickstand_dhcp_packets_total", map[string]string{"family": "4", "type": "discover", "result": "received"}); got != 2 {
		t.Errorf("dhcp discovers = %v, want 2 (one matched, one not)", got)
	}
	evs, err := st.Events(ctx, "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Host == "" {
			t.Errorf("an event of no host was stored: %+v", e)
		}
	}
}

func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is required (KICKSTAND_REQUIRE_PEERS=1) but missing: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}
