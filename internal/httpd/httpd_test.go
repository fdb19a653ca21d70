package httpd

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

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
