package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
	"github.com/kickstand/kickstand/internal/timeline"
)

// Build tokens and template secrets of the test inventory: no answer of
// the API may contain them.
const (
	buildTokenPrefix = "BUILDTOKENSECRET"
	rootHash         = "$6$saltsalt$Zm9vYmFyYmF6cXV4Zm9vYmFyYmF6cXV4"
)

type fixture struct {
	t      *testing.T
	st     store.Store
	rec    *timeline.Recorder
	srv    *httptest.Server
	token  string // a valid API token, named "ops"
	open   atomic.Bool
	builds atomic.Int64
}

func newFixture(t *testing.T, opts ...func(*Deps)) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{t: t, st: storetest.NewFake()}
	now := time.Now()
	d := storetest.Declared(now)
	n := 0
	d.NewToken = func() string { n++; return fmt.Sprintf("%s%d", buildTokenPrefix, n) }
	d.Hosts[0].Vars = map[string]string{"rootpw": rootHash}
	d.Profiles[0].Vars = map[string]string{"rootpw": rootHash}
	if _, err := f.st.SyncDeclared(ctx, d); err != nil {
		t.Fatal(err)
	}
	f.rec = timeline.New(f.st, nil, slog.New(slog.DiscardHandler))
	done := make(chan struct{})
	go func() { f.rec.Run(ctx); close(done) }()
	f.token = NewToken()
	if err := f.st.CreateAPIToken(ctx, store.APIToken{Name: "ops", Hash: HashToken(f.token), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	cfg := func() *inventory.Config { return &inventory.Config{} }
	lc := install.New(install.Deps{Store: f.st, Booter: boot.NewBooter(f.st, cfg), Config: cfg, Publish: f.rec,
		NewToken: func() string { return fmt.Sprintf("%sB%d", buildTokenPrefix, f.builds.Add(1)) }})
	d2 := Deps{
		Store:     f.st,
		Config:    cfg,
		Events:    f.rec,
		Lifecycle: lc,
		OpenReads: f.open.Load,
		Heartbeat: 20 * time.Millisecond,
	}
	for _, o := range opts {
		o(&d2)
	}
	f.srv = httptest.NewServer(Handler(d2))
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		cancel()
		<-done
	})
	return f
}

// do sends a request with the given bearer token ("" for none) and returns
// the status and body. Every answer must be JSON and free of secrets.
func (f *fixture) do(method, path, token, body string) (int, []byte) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		f.t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	if !json.Valid(b) {
		f.t.Errorf("%s %s: answer is not JSON: %s", method, path, b)
	}
	checkNoSecrets(f.t, method+" "+path, string(b))
	return resp.StatusCode, b
}

func checkNoSecrets(t *testing.T, what, s string) {
	t.Helper()
	for _, secret := range []string{buildTokenPrefix, "$6$saltsalt", "saltsalt", "hunter2"} {
		if strings.Contains(s, secret) {
			t.Errorf("%s: the answer contains the secret %q: %s", what, secret, s)
		}
	}
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decoding %s: %v", b, err)
	}
	return v
}

// waitEvent waits, boundedly, for the recorder to store an event of host
// that match accepts.
func (f *fixture) waitEvent(host string, match func(store.Event) bool) store.Event {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		evs, err := f.st.Events(context.Background(), host, 0, 0)
		if err != nil {
			f.t.Fatal(err)
		}
		for _, e := range evs {
			if match(e) {
				return e
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.t.Fatalf("no matching event of %s was recorded", host)
	return store.Event{}
}

func TestAuth(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	cases := []struct {
		name, method, path, token, body string
		open                            bool
		want                            int
	}{
		{"mutation without token", "POST", "/api/v1/hosts/b/build", "", "", false, 401},
		{"mutation without token, reads open", "POST", "/api/v1/hosts/b/state", "", `{"state":"menu"}`, true, 401},
		{"mutation with a wrong token", "POST", "/api/v1/hosts/b/build", NewToken(), "", false, 401},
		{"mutation with the token's last character changed", "POST", "/api/v1/hosts/b/build", f.token[:len(f.token)-1] + "?", "", false, 401},
		{"mutation with the hash as token", "POST", "/api/v1/hosts/b/build", fmt.Sprintf("%x", HashToken(f.token)), "", false, 401},
		{"mutation with a good token", "POST", "/api/v1/hosts/b/state", f.token, `{"state":"menu"}`, false, 200},
		{"read without token", "GET", "/api/v1/hosts", "", "", false, 401},
		{"read with a wrong token", "GET", "/api/v1/hosts", "nope", "", false, 401},
		{"read with a good token", "GET", "/api/v1/hosts", f.token, "", false, 200},
		{"read without token, reads open", "GET", "/api/v1/hosts", "", "", true, 200},
		{"stream without token", "GET", "/api/v1/events/stream", "", "", false, 401},
		{"read with a wrong token, reads open", "GET", "/api/v1/hosts", "nope", "", true, 401},
		{"openapi without token", "GET", "/api/v1/openapi.json", "", "", false, 200},
		{"whoami without token", "GET", "/api/v1/whoami", "", "", false, 200},
	}
	for _, c := range cases {
		f.open.Store(c.open)
		got, body := f.do(c.method, c.path, c.token, c.body)
		if got != c.want {
			t.Errorf("%s: %s %s = %d %s, want %d", c.name, c.method, c.path, got, body, c.want)
		}
		if got == 401 && !strings.Contains(decode[errorBody](t, body).Error, "token") {
			t.Errorf("%s: 401 without a word about tokens: %s", c.name, body)
		}
	}
	f.open.Store(false)

	// "Bearer" is case-insensitive (RFC 6750 uses the auth-scheme of RFC
	// 7235); other schemes are not tokens.
	for hdr, want := range map[string]int{"bearer " + f.token: 200, "BEARER " + f.token: 200, "Basic " + f.token: 401, f.token: 401, "Bearer": 401} {
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/profiles", nil)
		req.Header.Set("Authorization", hdr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("Authorization %.12q...: %d, want %d", hdr, resp.StatusCode, want)
		}
		if want == 401 && !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("401 without WWW-Authenticate: Bearer: %q", resp.Header.Get("WWW-Authenticate"))
		}
	}

	// Every stored token is checked: the match is found whatever its place.
	second := NewToken()
	if err := f.st.CreateAPIToken(ctx, store.APIToken{Name: "zz-last", Hash: HashToken(second), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	_, body := f.do("GET", "/api/v1/whoami", second, "")
	if w := decode[map[string]any](t, body); w["authenticated"] != true || w["token"] != "zz-last" || w["open_reads"] != false {
		t.Errorf("whoami with the second token = %s", body)
	}
	_, body = f.do("GET", "/api/v1/whoami", "nope", "")
	if w := decode[map[string]any](t, body); w["authenticated"] != false {
		t.Errorf("whoami with a bad token = %s", body)
	}

	// A revoked token stops working at once.
	if err := f.st.RevokeAPIToken(ctx, "ops"); err != nil {
		t.Fatal(err)
	}
	if got, body := f.do("POST", "/api/v1/hosts/b/build", f.token, ""); got != 401 {
		t.Errorf("revoked token: %d %s", got, body)
	}
	if got, _ := f.do("POST", "/api/v1/hosts/b/build", second, ""); got != 200 {
		t.Errorf("the other token after a revoke: %d", got)
	}
}

func TestTokens(t *testing.T) {
	a, b := NewToken(), NewToken()
	if a == b || !strings.HasPrefix(a, tokenPrefix) || len(a) != len(tokenPrefix)+26 {
		t.Errorf("tokens %q %q", a, b)
	}
	if len(HashToken(a)) != 32 || string(HashToken(a)) == string(HashToken(b)) {
		t.Error("HashToken is not a SHA-256")
	}
	for name, ok := range map[string]bool{"ops": true, "ci-runner.2": true, "a": true, "": false, "-x": false, "a b": false, "a/b": false, strings.Repeat("x", 65): false} {
		if err := CheckTokenName(name); (err == nil) != ok {
			t.Errorf("CheckTokenName(%q) = %v", name, err)
		}
	}
}

func TestRoutes(t *testing.T) {
	f := newFixture(t)
	tok := f.token
	// Events that quote secrets, as installer syslog lines and uploaded
	// logs do.
	f.rec.Record(store.Event{Host: "a", Kind: "dhcp.ack", Detail: "ack 52:54:00:00:00:0a", Data: map[string]any{"family": 4, "mac": "52:54:00:00:00:0a"}})
	f.rec.Record(store.Event{Host: "a", Kind: "syslog", Detail: "anaconda: fetching http://192.0.2.1/ks/" + buildTokenPrefix + "1 inst.vncpassword=hunter2",
		Data: map[string]any{"lines": []any{"curl http://u:hunter2@mirror/x", "rootpw --iscrypted " + rootHash}}})
	f.waitEvent("a", func(e store.Event) bool { return e.Kind == "syslog" })

	code, body := f.do("GET", "/api/v1/hosts", tok, "")
	hosts := decode[[]Host](t, body)
	if code != 200 || len(hosts) != 2 || hosts[0].Name != "a" || hosts[0].State != "install" || hosts[1].State != "local" {
		t.Fatalf("hosts = %d %s", code, body)
	}
	if sum, _ := hosts[0].Diagnosis.(map[string]any); sum["stage"] != "dhcp" || sum["progress"] != 5.0 || sum["stalled"] != false {
		t.Errorf("a's diagnosis summary = %v", hosts[0].Diagnosis)
	}
	if hosts[0].TokenExpires.IsZero() || !hosts[1].TokenExpires.IsZero() || hosts[0].LastSeen.IsZero() {
		t.Errorf("token_expires/last_seen: %+v", hosts)
	}

	code, body = f.do("GET", "/api/v1/hosts/a", tok, "")
	if h := decode[Host](t, body); code != 200 || h.Name != "a" || h.Profile != "p" || len(h.MACs) != 1 {
		t.Errorf("host a = %d %s", code, body)
	}
	if code, body = f.do("GET", "/api/v1/hosts/zzz", tok, ""); code != 404 || !strings.Contains(string(body), "zzz") {
		t.Errorf("unknown host = %d %s", code, body)
	}

	code, body = f.do("GET", "/api/v1/hosts/a/timeline", tok, "")
	tl := decode[[]store.Event](t, body)
	if code != 200 || len(tl) != 2 || tl[0].Kind != "dhcp.ack" || tl[1].Kind != "syslog" {
		t.Fatalf("timeline = %d %s", code, body)
	}
	if !strings.Contains(tl[1].Detail, "/ks/<token>") || !strings.Contains(tl[1].Detail, "vncpassword=<redacted>") {
		t.Errorf("syslog line not redacted as expected: %q", tl[1].Detail)
	}
	code, body = f.do("GET", fmt.Sprintf("/api/v1/hosts/a/timeline?after=%d", tl[0].ID), tok, "")
	if after := decode[[]store.Event](t, body); code != 200 || len(after) != 1 || after[0].ID != tl[1].ID {
		t.Errorf("timeline after = %d %s", code, body)
	}
	if code, _ = f.do("GET", "/api/v1/hosts/zzz/timeline", tok, ""); code != 404 {
		t.Errorf("timeline of an unknown host = %d", code)
	}
	for _, q := range []string{"after=x", "after=-1", "limit=0", "limit=100000", "limit=x"} {
		if code, body = f.do("GET", "/api/v1/hosts/a/timeline?"+q, tok, ""); code != 400 {
			t.Errorf("timeline?%s = %d %s", q, code, body)
		}
		if code, body = f.do("GET", "/api/v1/events?"+q, tok, ""); code != 400 {
			t.Errorf("events?%s = %d %s", q, code, body)
		}
	}

	code, body = f.do("GET", "/api/v1/events?limit=1", tok, "")
	if evs := decode[[]store.Event](t, body); code != 200 || len(evs) != 1 || evs[0].ID != tl[0].ID {
		t.Errorf("events?limit=1 = %d %s", code, body)
	}
	code, body = f.do("GET", fmt.Sprintf("/api/v1/events?after=%d", tl[1].ID), tok, "")
	if code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Errorf("events after the last = %d %s", code, body)
	}

	code, body = f.do("GET", "/api/v1/profiles", tok, "")
	if ps := decode[[]inventory.Profile](t, body); code != 200 || len(ps) != 1 || ps[0].Name != "p" || ps[0].Vars["rootpw"] != "<hidden>" {
		t.Errorf("profiles = %d %s", code, body)
	}
	code, body = f.do("GET", "/api/v1/distros", tok, "")
	if ds := decode[[]inventory.Distro](t, body); code != 200 || len(ds) != 1 || ds[0].Name != "el9" {
		t.Errorf("distros = %d %s", code, body)
	}

	code, body = f.do("GET", "/api/v1/openapi.json", "", "")
	if doc := decode[map[string]any](t, body); code != 200 || doc["openapi"] != "3.0.3" {
		t.Errorf("openapi.json = %d", code)
	}

	// Errors are JSON with fitting codes.
	for _, c := range []struct {
		method, path, body string
		want               int
	}{
		{"PUT", "/api/v1/hosts/a", "", 405},
		{"DELETE", "/api/v1/hosts/a", "", 409}, // the file's
		{"GET", "/api/v1/hosts/a/build", "", 405},
		{"GET", "/api/v1/nope", "", 404},
		{"POST", "/api/v1/hosts/zzz/build", "", 404},
		{"POST", "/api/v1/hosts/zzz/state", `{"state":"local"}`, 404},
		{"POST", "/api/v1/hosts/a/state", `{"state":"bogus"}`, 400},
		{"POST", "/api/v1/hosts/a/state", `{"state":"local","extra":1}`, 400},
		{"POST", "/api/v1/hosts/a/state", `not json`, 400},
		{"POST", "/api/v1/hosts/a/state", ``, 400},
	} {
		code, body := f.do(c.method, c.path, tok, c.body)
		if code != c.want || decode[errorBody](t, body).Error == "" {
			t.Errorf("%s %s %s = %d %s, want %d and an error", c.method, c.path, c.body, code, body, c.want)
		}
	}
	if h, _ := f.st.Host(context.Background(), "a"); h.State != inventory.StateInstall {
		t.Errorf("a failed state change changed a's state to %s", h.State)
	}
}

func TestStateChangesAreRecorded(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before, _ := f.st.Host(ctx, "b")

	code, body := f.do("POST", "/api/v1/hosts/b/build", f.token, "")
	h := decode[Host](t, body)
	if code != 200 || h.State != "install" || h.TokenExpires.IsZero() {
		t.Fatalf("build b = %d %s", code, body)
	}
	if d, _ := h.Diagnosis.(map[string]any); d["stage"] != "waiting" {
		t.Errorf("a fresh build should be waiting: %v", h.Diagnosis)
	}
	after, _ := f.st.Host(ctx, "b")
	if after.State != inventory.StateInstall || after.Token == before.Token || !strings.HasPrefix(after.Token, buildTokenPrefix+"B") {
		t.Errorf("build did not make a fresh token: %+v", after)
	}
	f.waitEvent("b", func(e store.Event) bool {
		return e.Kind == "state" && e.Data["from"] == "local" && e.Data["to"] == "install" && e.Data["by"] == "api"
	})

	code, body = f.do("POST", "/api/v1/hosts/b/state", f.token, `{"state":"local"}`)
	if h := decode[Host](t, body); code != 200 || h.State != "local" || !h.TokenExpires.IsZero() {
		t.Fatalf("state local = %d %s", code, body)
	}
	f.waitEvent("b", func(e store.Event) bool {
		return e.Kind == "state" && e.Data["from"] == "install" && e.Data["to"] == "local" && e.Data["by"] == "api"
	})

	// install through /state is a build: a fresh token again.
	if code, body = f.do("POST", "/api/v1/hosts/b/state", f.token, `{"state":"install"}`); code != 200 {
		t.Fatalf("state install = %d %s", code, body)
	}
	if again, _ := f.st.Host(ctx, "b"); again.Token == after.Token || f.builds.Load() != 2 {
		t.Errorf("state install did not build: token %q, builds %d", again.Token, f.builds.Load())
	}
}

// sse reads server-sent events from a stream.
type sse struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

func (f *fixture) openStream(query string, header map[string]string) *sse {
	f.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f.t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/api/v1/events/stream"+query, nil)
	req.Header.Set("Authorization", "Bearer "+f.token)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		f.t.Fatalf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sse{t: f.t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// line returns the stream's next line. A stuck stream fails the test
// through a bound on the read.
func (s *sse) line() string {
	s.t.Helper()
	timer := time.AfterFunc(10*time.Second, func() { s.resp.Body.Close() })
	defer timer.Stop()
	line, err := s.r.ReadString('\n')
	if err != nil {
		s.t.Fatalf("stream ended: %v", err)
	}
	return strings.TrimRight(line, "\n")
}

// keepalive reads until a heartbeat comment; no event may come first.
func (s *sse) keepalive() {
	s.t.Helper()
	for {
		switch l := s.line(); {
		case l == ": keepalive":
			return
		case strings.HasPrefix(l, "data: "):
			s.t.Fatalf("unexpected event %s", l)
		}
	}
}

// next returns the next event's id and data, skipping comments.
func (s *sse) next() (string, store.Event) {
	s.t.Helper()
	var id string
	var data []byte
	for {
		line := s.line()
		switch {
		case line == "" && data != nil:
			var e store.Event
			if err := json.Unmarshal(data, &e); err != nil {
				s.t.Fatalf("stream data %s: %v", data, err)
			}
			checkNoSecrets(s.t, "stream", string(data))
			return id, e
		case strings.HasPrefix(line, "id: "):
			id = line[4:]
		case strings.HasPrefix(line, "data: "):
			data = append(data, line[6:]...)
		}
	}
}

func TestStream(t *testing.T) {
	f := newFixture(t)
	f.rec.Record(store.Event{Host: "a", Kind: "dhcp.discover", Detail: "old"})
	old := f.waitEvent("a", func(e store.Event) bool { return e.Detail == "old" })

	// From now on: the old event is not sent, a new one is, with its id.
	s := f.openStream("", nil)
	f.rec.Record(store.Event{Host: "b", Kind: "syslog", Detail: "kickstart from http://x/ks/" + buildTokenPrefix + "9"})
	id, e := s.next()
	if e.Host != "b" || e.Kind != "syslog" || id != fmt.Sprint(e.ID) || e.ID <= old.ID || !strings.Contains(e.Detail, "/ks/<token>") {
		t.Errorf("first streamed event = %s %+v", id, e)
	}

	// The state change of an API call arrives on the stream.
	if code, body := f.do("POST", "/api/v1/hosts/b/state", f.token, `{"state":"menu"}`); code != 200 {
		t.Fatalf("state = %d %s", code, body)
	}
	if _, e := s.next(); e.Kind != "state" || e.Data["to"] != "menu" || e.Data["by"] != "api" {
		t.Errorf("second streamed event = %+v", e)
	}

	// Heartbeats keep idle streams open through proxies.
	s.keepalive()
	f.rec.Record(store.Event{Host: "a", Kind: "tftp.file", Detail: "late"})
	if _, e := s.next(); e.Detail != "late" {
		t.Errorf("third streamed event = %+v", e)
	}

	// A reconnecting client resumes after Last-Event-ID, ahead of ?after=;
	// ?host= narrows the stream.
	r := f.openStream("?after=0&host=a", map[string]string{"Last-Event-ID": fmt.Sprint(old.ID - 1)})
	if _, e := r.next(); e.ID != old.ID {
		t.Errorf("resumed stream starts with %+v, want event %d", e, old.ID)
	}
	if _, e := r.next(); e.Host != "a" || e.Detail != "late" {
		t.Errorf("host stream sent %+v", e)
	}
	for _, q := range []string{"?after=x", "?host=zzz"} {
		if code, body := f.do("GET", "/api/v1/events/stream"+q, f.token, ""); code != 400 && code != 404 {
			t.Errorf("stream%s = %d %s", q, code, body)
		}
	}
}

// A broken store is a 500, never a 404 or an empty list that would read
// as "no such host" or "nothing happened".
func TestBrokenStore(t *testing.T) {
	h := Handler(Deps{Store: storetest.Broken{}, OpenReads: func() bool { return true }})
	for _, p := range []string{"/api/v1/hosts", "/api/v1/hosts/a", "/api/v1/hosts/a/timeline", "/api/v1/profiles", "/api/v1/distros", "/api/v1/events", "/api/v1/events/stream"} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", p, nil))
		if w.Code != 500 || !strings.Contains(w.Body.String(), `"error"`) || strings.Contains(w.Body.String(), "broken") {
			t.Errorf("GET %s on a broken store = %d %s", p, w.Code, w.Body)
		}
	}
	w := httptest.NewRecorder()
	r := httptest.NewRequest("POST", "/api/v1/hosts/a/build", nil)
	r.Header.Set("Authorization", "Bearer "+NewToken())
	h.ServeHTTP(w, r)
	if w.Code != 500 {
		t.Errorf("auth on a broken store = %d %s", w.Code, w.Body)
	}
}

// The lifecycle records each state change once, in the store, with the API
// token's name, and the API still wakes its streams at once: with an
// hour-long heartbeat, the event can only come through that wake-up.
func TestSetStateRecordsOnce(t *testing.T) {
	f := newFixture(t, func(d *Deps) { d.Heartbeat = time.Hour })
	s := f.openStream("", nil)
	if code, body := f.do("POST", "/api/v1/hosts/b/build", f.token, ""); code != 200 {
		t.Fatalf("build = %d %s", code, body)
	}
	if _, e := s.next(); e.Kind != "state" || e.Data["to"] != "install" || e.Data["by"] != "api" || e.Data["who"] != "ops" {
		t.Errorf("streamed %+v", e)
	}
	if code, body := f.do("POST", "/api/v1/hosts/b/state", f.token, `{"state":"local"}`); code != 200 {
		t.Fatalf("state = %d %s", code, body)
	}
	if _, e := s.next(); e.Kind != "state" || e.Data["to"] != "local" {
		t.Errorf("streamed %+v", e)
	}
	f.rec.Record(store.Event{Host: "b", Kind: "marker"})
	f.waitEvent("b", func(e store.Event) bool { return e.Kind == "marker" })
	evs, _ := f.st.Events(context.Background(), "b", 0, 0)
	if n := countKind(evs, "state"); n != 2 || f.builds.Load() != 1 {
		t.Errorf("%d state events, %d builds; want 2 and 1: %+v", n, f.builds.Load(), evs)
	}
	if h, _ := f.st.Host(context.Background(), "b"); h.Token != "" {
		t.Errorf("the build token outlived install: host b is %s with a token", h.State)
	}
}

func countKind(evs []store.Event, kind string) int {
	n := 0
	for _, e := range evs {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// Every route the API registers refuses a stranger as its access level
// says: a write route without a token is 401 even with reads open, a read
// route is 401 unless reads are open, and only the public ones answer.
// A route added later is covered without a new case.
func TestEveryRouteRefusesStrangers(t *testing.T) {
	f := newFixture(t)
	fill := strings.NewReplacer("{name}", "b", "{kind}", "ipxe", "{mac}", "52:54:00:00:00:0b")
	for _, r := range routes() {
		path := "/api/v1" + fill.Replace(r.path)
		for _, open := range []bool{false, true} {
			if open && strings.HasSuffix(path, "/stream") {
				continue // an open stream answers 200 and stays open (TestStream)
			}
			f.open.Store(open)
			got, body := f.do(r.method, path, "", `{}`)
			stranger := r.access == write || r.access == read && !open
			if stranger && got != 401 {
				t.Errorf("%s %s (%v, reads open %v) without a token: %d %s, want 401", r.method, path, r.access, open, got, body)
			}
			if !stranger && got == 401 {
				t.Errorf("%s %s (%v, reads open %v): 401, want an answer", r.method, path, r.access, open)
			}
		}
	}
	f.open.Store(false)
}
