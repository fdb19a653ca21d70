package httpd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

func TestFactsFromQuery(t *testing.T) {
	r := httptest.NewRequest("GET", "/boot.ipxe?mac=52-54-00-00-00-10&uuid=ABCDEF00-0000-0000-0000-000000000000&arch=7&host=h1", nil)
	r.RemoteAddr = "192.0.2.10:1234"
	f := Facts(r)
	if f.MAC != "52:54:00:00:00:10" || f.UUID != "abcdef00-0000-0000-0000-000000000000" || f.Arch != boot.ArchEFIX64 || f.Chosen != "h1" || f.ClientIP.String() != "192.0.2.10" || f.Firmware != boot.FirmwareIPXE {
		t.Errorf("facts = %+v", f)
	}
	if f := Facts(httptest.NewRequest("GET", "/boot.ipxe?arch=x", nil)); f.Arch != boot.ArchNone {
		t.Errorf("bad arch parsed as %d", f.Arch)
	}
}

// A broken store must give 500s and an unhealthy /healthz, never a
// "not found" that would boot an installing machine from its disk.
func TestBrokenStoreIsAnError(t *testing.T) {
	cfg := &inventory.Config{Menu: inventory.Menu{Unknown: "menu"}}
	get := func() *inventory.Config { return cfg }
	st := storetest.Broken{}
	b := &boot.Booter{Store: st, Config: get}
	s := &Server{Booter: b, Files: &bootfiles.Files{Booter: b, Store: st, Config: get}, Store: st, Config: get, Log: discard()}
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
// and only to that host: everything else is a bare 404 that changes nothing.
func TestTokenRules(t *testing.T) {
	ctx := context.Background()
	st := storetest.NewFake()
	now := time.Now()
	d := storetest.Declared(now) // hosts a (192.0.2.10, install, tok1) and b (2001:db8::b, local)
	if _, err := st.SyncDeclared(ctx, d); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SetState(ctx, "b", inventory.StateInstall, "tokB", now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clock := now
	cfg := &inventory.Config{Menu: inventory.Menu{Unknown: "menu"}, Server: inventory.Server{AddressV4: "192.0.2.1", HTTPPort: 8080}}
	get := func() *inventory.Config { return cfg }
	b := &boot.Booter{Store: st, Config: get, Now: func() time.Time { return clock }}
	s := &Server{Booter: b, Files: &bootfiles.Files{Booter: b, Store: st, Config: get}, Store: st, Config: get, Log: discard(), Now: func() time.Time { return clock }}
	h := s.Handler()
	do := func(method, path, from string) (int, string) {
		r := httptest.NewRequest(method, path, nil)
		r.RemoteAddr = from
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code, w.Body.String()
	}
	if code, body := do("GET", "/ks/tok1", "192.0.2.10:1000"); code != 200 || !strings.Contains(body, "network") {
		t.Fatalf("own token: %d %s", code, body)
	}
	for _, c := range []struct{ method, path, from string }{
		{"GET", "/ks/", "192.0.2.10:1"},
		{"GET", "/ks/nope", "192.0.2.10:1"},
		{"GET", "/ks/tokB", "192.0.2.10:1"},        // b's token, from a's address
		{"GET", "/ks/tok1", "192.0.2.99:1"},        // a's token, from an address a does not have
		{"POST", "/cb/tokB/built", "192.0.2.10:1"}, // and b's callback
		{"POST", "/cb/nope/built", "192.0.2.10:1"},
		{"POST", "/cb//built", "192.0.2.10:1"},
	} {
		if code, body := do(c.method, c.path, c.from); code != 404 || strings.Contains(body, "b") && len(body) > 20 {
			t.Errorf("%s %s from %s: %d %q", c.method, c.path, c.from, code, body)
		}
	}
	if r, _ := st.Host(ctx, "b"); r.State != inventory.StateInstall {
		t.Errorf("a refused callback changed b's state to %s", r.State)
	}
	clock = now.Add(2 * time.Hour) // both tokens expired
	if code, _ := do("GET", "/ks/tok1", "192.0.2.10:1000"); code != 404 {
		t.Errorf("expired token: %d", code)
	}
	if code, _ := do("POST", "/cb/tok1/built", "192.0.2.10:1000"); code != 404 {
		t.Errorf("callback with an expired token: %d", code)
	}
	if r, _ := st.Host(ctx, "a"); r.State != inventory.StateInstall {
		t.Errorf("expired callback changed a's state to %s", r.State)
	}
}

// /ks without a token is served only to profiles that opted in, by the
// inst.ks.sendmac header or by the host's static address.
func TestKickstartFallbacks(t *testing.T) {
	ctx := context.Background()
	st := storetest.NewFake()
	d := storetest.Declared(time.Now())
	if _, err := st.SyncDeclared(ctx, d); err != nil {
		t.Fatal(err)
	}
	cfg := &inventory.Config{Server: inventory.Server{AddressV4: "192.0.2.1", HTTPPort: 8080}}
	get := func() *inventory.Config { return cfg }
	b := &boot.Booter{Store: st, Config: get}
	s := &Server{Booter: b, Files: &bootfiles.Files{Booter: b, Store: st, Config: get}, Store: st, Config: get, Log: discard()}
	h := s.Handler()
	do := func(from, mac string) int {
		r := httptest.NewRequest("GET", "/ks", nil)
		r.RemoteAddr = from
		if mac != "" {
			r.Header.Set("X-RHN-Provisioning-MAC-0", "eth0 "+mac)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if do("198.51.100.7:1", "52:54:00:00:00:0a") != 404 || do("192.0.2.10:1", "") != 404 {
		t.Fatal("fallbacks served although the profile did not opt in")
	}
	d.Profiles[0].KickstartBy = []string{"mac"}
	st.SyncDeclared(ctx, d)
	if c := do("198.51.100.7:1", "52:54:00:00:00:0a"); c != 200 {
		t.Errorf("by MAC header: %d", c)
	}
	if c := do("192.0.2.10:1", ""); c != 404 {
		t.Errorf("by address without opting in: %d", c)
	}
	d.Profiles[0].KickstartBy = []string{"ip"}
	st.SyncDeclared(ctx, d)
	if c := do("192.0.2.10:1", ""); c != 200 {
		t.Errorf("by address: %d", c)
	}
	if c := do("198.51.100.7:1", "52:54:00:00:00:0b"); c != 404 {
		t.Errorf("a host in local state was served: %d", c)
	}
}
