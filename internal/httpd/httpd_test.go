package httpd

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

func TestFactsFromQuery(t *testing.T) {
	r := httptest.NewRequest("GET", "/boot.ipxe?mac=52-54-00-00-00-10&uuid=ABCDEF00-0000-0000-0000-000000000000&arch=7&host=h1", nil)
	r.RemoteAddr = "192.0.2.10:1234"
	f := Facts(r)
	// What a client says of itself is not identity: the MAC is only a
	// claim, the UUID is not taken at all.
	if f.MAC != "" || f.UUID != "" || f.ClaimedMAC != "52:54:00:00:00:10" || f.Arch != boot.ArchEFIX64 || f.ClientIP.String() != "192.0.2.10" || f.Firmware != boot.FirmwareIPXE {
		t.Errorf("facts = %+v", f)
	}
	if f := Facts(httptest.NewRequest("GET", "/boot.ipxe?arch=x", nil)); f.Arch != boot.ArchNone {
		t.Errorf("bad arch parsed as %d", f.Arch)
	}
}

// rig is an HTTP side over a fake store, with the file synced through the
// lifecycle and tokens tok1, tok2, ... in the order they are minted.
type rig struct {
	st    *storetest.Fake
	cfg   *inventory.Config
	clock time.Time
	lc    *install.Service
	h     http.Handler
}

func newRig(t *testing.T, d store.Declared, cfg *inventory.Config) *rig {
	t.Helper()
	r := &rig{st: storetest.NewFake(), cfg: cfg, clock: time.Now()}
	cfg.Distros, cfg.Profiles, cfg.Hosts = d.Distros, d.Profiles, d.Hosts
	get := func() *inventory.Config { return r.cfg }
	now := func() time.Time { return r.clock }
	b := boot.NewBooter(r.st, get)
	b.Now = now
	n := 0
	r.lc = install.New(install.Deps{Store: r.st, Booter: b, Config: get, Now: now, Log: discard(),
		NewToken: func() string { n++; return fmt.Sprintf("tok%d", n) }})
	if _, err := r.lc.SyncFile(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	s := &Server{Booter: b, Install: r.lc, Files: &bootfiles.Files{Booter: b, Chooser: r.lc, Store: r.st, Config: get}, Store: r.st, Log: discard()}
	r.h = s.Handler()
	return r
}

func (r *rig) do(method, path, from string) (int, string) {
	req := httptest.NewRequest(method, path, nil)
	req.RemoteAddr = from
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, req)
	return w.Code, w.Body.String()
}

// A broken store must give 500s and an unhealthy /healthz, never a
// "not found" that would boot an installing machine from its disk.
func TestBrokenStoreIsAnError(t *testing.T) {
	cfg := &inventory.Config{Menu: inventory.Menu{Unknown: "menu"}}
	get := func() *inventory.Config { return cfg }
	st := storetest.Broken{}
	b := boot.NewBooter(st, get)
	lc := install.New(install.Deps{Store: st, Booter: b, Config: get})
	s := &Server{Booter: b, Install: lc, Files: &bootfiles.Files{Booter: b, Chooser: lc, Store: st, Config: get}, Store: st, Log: discard()}
	h := s.Handler()
	for path, want := range map[string]int{"/healthz": 503, "/boot.ipxe?mac=52:54:00:00:00:10": 500, "/pxelinux.cfg/01-52-54-00-00-00-10": 500, "/ks/abc": 500} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil).WithContext(context.Background()))
		if w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

func FuzzRequest(f *testing.F) {
	for _, s := range [][2]string{
		{"/boot.ipxe", "mac=52:54:00:00:00:10&arch=7"}, {"/distros/x/../../etc/passwd", ""},
		{"/pxelinux.cfg/01-52-54-00-00-00-10", ""}, {"/ks/TOKEN", "a=%zz"}, {"//etc/passwd", "host=x&uuid=;"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, path, query string) {
		r := &http.Request{Method: "GET", URL: &url.URL{Path: path, RawQuery: query}, Header: http.Header{}, RemoteAddr: "192.0.2.1:1"}
		r = r.WithContext(context.Background())
		Facts(r)
		refuseEscapes(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, seg := range strings.Split(r.URL.Path, "/") {
				if seg == ".." {
					t.Fatalf("escape reached the router: %q", r.URL.Path)
				}
			}
		})).ServeHTTP(httptest.NewRecorder(), r)
	})
}

// Kickstarts and callbacks answer only to the host's own, unexpired token,
// and only to that host, whatever the address family: everything else is a
// bare 404 that changes nothing.
func TestTokenRules(t *testing.T) {
	ctx := context.Background()
	cfg := &inventory.Config{Menu: inventory.Menu{Unknown: "menu"}, Server: inventory.Server{AddressV4: "192.0.2.1", HTTPPort: 8080}}
	// hosts a (192.0.2.10 only, install, tok1) and b (2001:db8::b only, local)
	r := newRig(t, storetest.Declared(time.Now()), cfg)
	if _, err := r.lc.Build(ctx, "b", install.ByCLI); err != nil { // tok2
		t.Fatal(err)
	}
	if code, body := r.do("GET", "/ks/tok1", "192.0.2.10:1000"); code != 200 || !strings.Contains(body, "network") {
		t.Fatalf("own token: %d %s", code, body)
	}
	if code, _ := r.do("GET", "/ks/tok2", "[2001:db8::b]:1000"); code != 200 {
		t.Fatalf("own token over IPv6: %d", code)
	}
	for _, c := range []struct{ method, path, from string }{
		{"GET", "/ks/", "192.0.2.10:1"},
		{"GET", "/ks/nope", "192.0.2.10:1"},
		{"GET", "/ks/tok2", "192.0.2.10:1"},          // b's token, from a's address
		{"GET", "/ks/tok1", "192.0.2.99:1"},          // a's token, from an address a does not have
		{"GET", "/ks/tok1", "[2001:db8::99]:1"},      // a (IPv4 only), from any IPv6 address
		{"GET", "/ks/tok1", "[::ffff:192.0.2.99]:1"}, // mapped
		{"POST", "/cb/tok2/built", "192.0.2.10:1"},   // b's callback from a
		{"POST", "/cb/tok1/failed", "[2001:db8::b]:1"},
		{"POST", "/cb/nope/built", "192.0.2.10:1"},
		{"POST", "/cb//built", "192.0.2.10:1"},
	} {
		if code, body := r.do(c.method, c.path, c.from); code != 404 || strings.Contains(body, "b") && len(body) > 20 {
			t.Errorf("%s %s from %s: %d %q", c.method, c.path, c.from, code, body)
		}
	}
	for _, h := range []string{"a", "b"} {
		if rec, _ := r.st.Host(ctx, h); rec.State != inventory.StateInstall {
			t.Errorf("a refused callback changed %s's state to %s", h, rec.State)
		}
	}
	if code, body := r.do("POST", "/cb/tok1/built", "192.0.2.10:1000"); code != 200 || body != "ok\n" {
		t.Fatalf("built: %d %q", code, body)
	}
	// The token went with install: the kickstart and failed are gone; a
	// repeated built is told it was recorded.
	if code, _ := r.do("GET", "/ks/tok1", "192.0.2.10:1000"); code != 404 {
		t.Errorf("kickstart after built: %d", code)
	}
	if code, _ := r.do("POST", "/cb/tok1/failed", "192.0.2.10:1000"); code != 404 {
		t.Errorf("failed after built: %d", code)
	}
	if code, body := r.do("POST", "/cb/tok1/built", "192.0.2.10:1000"); code != 200 || !strings.Contains(body, "already") {
		t.Errorf("repeated built: %d %q", code, body)
	}
	if rec, _ := r.st.Host(ctx, "a"); rec.State != inventory.StateLocal || rec.Token != "" {
		t.Errorf("after built: %s, token kept: %v", rec.State, rec.Token != "")
	}
	r.clock = r.clock.Add(7 * time.Hour) // b's token expired
	if code, _ := r.do("GET", "/ks/tok2", "[2001:db8::b]:1000"); code != 404 {
		t.Errorf("expired token: %d", code)
	}
	if code, _ := r.do("POST", "/cb/tok2/failed", "[2001:db8::b]:1000"); code != 404 {
		t.Errorf("failed with an expired token: %d", code)
	}
}

// /ks without a token is served only to profiles that opted in, and only
// to the host's own address; with "mac", Anaconda's MAC header must also
// name one of the host's MACs. The header alone identifies nobody.
func TestKickstartFallbacks(t *testing.T) {
	ctx := context.Background()
	d := storetest.Declared(time.Now())
	cfg := &inventory.Config{Server: inventory.Server{AddressV4: "192.0.2.1", HTTPPort: 8080}}
	r := newRig(t, d, cfg)
	do := func(from, mac string) int {
		req := httptest.NewRequest("GET", "/ks", nil)
		req.RemoteAddr = from
		if mac != "" {
			req.Header.Set("X-RHN-Provisioning-MAC-0", "eth0 "+mac)
		}
		w := httptest.NewRecorder()
		r.h.ServeHTTP(w, req)
		return w.Code
	}
	resync := func() {
		cfg.Profiles = d.Profiles
		if _, err := r.lc.SyncFile(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if do("192.0.2.10:1", "52:54:00:00:00:0a") != 404 || do("192.0.2.10:1", "") != 404 {
		t.Fatal("fallbacks served although the profile did not opt in")
	}
	d.Profiles[0].KickstartBy = []string{"mac"}
	resync()
	if c := do("192.0.2.10:1", "52:54:00:00:00:0a"); c != 200 {
		t.Errorf("by MAC header from the host: %d", c)
	}
	if c := do("198.51.100.7:1", "52:54:00:00:00:0a"); c != 404 {
		t.Errorf("by MAC header from another address: %d", c)
	}
	if c := do("192.0.2.10:1", ""); c != 404 {
		t.Errorf("by address without opting in: %d", c)
	}
	d.Profiles[0].KickstartBy = []string{"ip"}
	resync()
	if c := do("192.0.2.10:1", ""); c != 200 {
		t.Errorf("by address: %d", c)
	}
	if c := do("[2001:db8::b]:1", "52:54:00:00:00:0b"); c != 404 {
		t.Errorf("a host in local state was served: %d", c)
	}
}

// The render gate: a kickstart that fails lint for its host's release is
// not served (503) and the errors go on the host's timeline; once the
// template is fixed it is served, with no restart. lint: warn serves it.
func TestKickstartLintGate(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "k.ks")
	// bogus is no command in any release, so the release rewrite leaves it
	// (it would comment out install, which RHEL 9 removed)
	os.WriteFile(tmpl, []byte("text\nbogus\nautopart\n"), 0o644)
	d := storetest.Declared(time.Now()) // el9 is rhel9
	d.Profiles[0].Kickstart = "k.ks"
	cfg := &inventory.Config{Server: inventory.Server{AddressV4: "192.0.2.1", HTTPPort: 8080, Templates: dir}}
	r := newRig(t, d, cfg)
	if code, body := r.do("GET", "/ks/tok1", "192.0.2.10:1"); code != 503 || strings.Contains(body, "autopart") {
		t.Fatalf("a kickstart failing lint: %d %q", code, body)
	}
	evs, _ := r.st.Events(ctx, "a", 0, 0)
	found := false
	for _, e := range evs {
		found = found || (e.Kind == "lint" && strings.Contains(e.Detail, "not served") && strings.Contains(e.Detail, "Unknown command: bogus"))
	}
	if !found {
		t.Errorf("no lint event on the host's timeline: %+v", evs)
	}
	os.WriteFile(tmpl, []byte("text\nautopart\n"), 0o644)
	r.clock = r.clock.Add(2 * time.Second)
	if code, body := r.do("GET", "/ks/tok1", "192.0.2.10:1"); code != 200 || !strings.Contains(body, "autopart") {
		t.Errorf("after the fix: %d %q", code, body)
	}
	os.WriteFile(tmpl, []byte("text\nbogus\nautopart\n"), 0o644)
	d.Profiles[0].Lint = "warn"
	cfg.Profiles = d.Profiles
	if _, err := r.lc.SyncFile(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	r.clock = r.clock.Add(2 * time.Second)
	if code, _ := r.do("GET", "/ks/tok1", "192.0.2.10:1"); code != 200 {
		t.Errorf("lint: warn: %d", code)
	}
}
