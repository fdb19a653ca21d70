package api

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

func TestDiscoveredAPI(t *testing.T) {
	refused := errors.New("bmc 192.0.2.250:623: log in: the BMC refused the user or password")
	f := newFixture(t, func(d *Deps) {
		cfg := func() *inventory.Config { return &inventory.Config{} }
		d.Lifecycle = install.New(install.Deps{Store: d.Store, Booter: boot.NewBooter(d.Store, cfg), Config: cfg, Publish: d.Events,
			BMC: func(context.Context, *inventory.Host) (install.BMC, error) { return nil, refused }})
	})
	ctx := context.Background()
	if code, body := f.do("GET", "/api/v1/discovered", f.token, ""); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("empty list: %d %s", code, body)
	}
	f.st.ReportDiscovered(ctx, store.Discovered{MAC: "52:54:00:17:02:01", Proof: "lease", Addr: "192.0.2.160", Serial: "S-9", LastSeen: time.Now()}, store.DiscoveryLimits{Max: 5})
	code, body := f.do("GET", "/api/v1/discovered", f.token, "")
	ds := decode[[]store.Discovered](t, body)
	if code != 200 || len(ds) != 1 || ds[0].Serial != "S-9" || ds[0].Host != "" {
		t.Fatalf("list: %d %s", code, body)
	}
	for _, c := range []struct {
		path, token, body string
		want              int
		msg               string
	}{
		{"/api/v1/discovered/52:54:00:17:02:01/assign", "", `{"name":"rk1","profile":"p"}`, 401, "bearer token"},
		{"/api/v1/discovered/52:54:00:17:02:01/assign", f.token, `{"name":"rk 1","profile":"p"}`, 400, "rk 1"},
		{"/api/v1/discovered/52:54:00:17:02:01/assign", f.token, `{"name":"rk1","profile":"nope"}`, 400, `unknown profile "nope"`},
		{"/api/v1/discovered/52:54:00:17:02:09/assign", f.token, `{"name":"rk9","profile":"p"}`, 404, "52:54:00:17:02:09"},
	} {
		code, body := f.do("POST", c.path, c.token, c.body)
		if code != c.want || !strings.Contains(decode[errorBody](t, body).Error, c.msg) {
			t.Errorf("POST %s %s = %d %s, want %d and %q", c.path, c.body, code, body, c.want, c.msg)
		}
	}
	code, body = f.do("POST", "/api/v1/discovered/52:54:00:17:02:01/assign", f.token, `{"name":"rk1","profile":"p"}`)
	if h := decode[Host](t, body); code != 201 || h.Name != "rk1" || h.State != "install" || len(h.MACs) != 1 || h.MACs[0] != "52:54:00:17:02:01" {
		t.Fatalf("assign: %d %s", code, body)
	}
	if code, body := f.do("POST", "/api/v1/discovered/52:54:00:17:02:01/assign", f.token, `{"name":"rk2","profile":"p"}`); code != 409 || !strings.Contains(string(body), "already assigned to host rk1") {
		t.Errorf("second assignment: %d %s", code, body)
	}

	// Reinstall: no bmc is 409; a BMC that refuses the login is 502 with
	// the reason, and no credential shows anywhere.
	if code, body := f.do("POST", "/api/v1/hosts/a/reinstall", f.token, ""); code != 409 || !strings.Contains(string(body), "no bmc") {
		t.Errorf("reinstall without bmc: %d %s", code, body)
	}
	h := inventory.Host{Name: "bm1", MACs: []string{"52:54:00:17:02:02"}, Profile: "p", Platform: "baremetal", Netboot: "local",
		BMC: &inventory.BMC{Driver: "ipmi", Address: "192.0.2.250:623", User: "bmcadmin", PasswordFile: "/etc/kickstand/bm1.pw"}}
	if _, err := f.st.CreateHost(ctx, h, store.Transition{State: inventory.StateLocal}); err != nil {
		t.Fatal(err)
	}
	code, body = f.do("POST", "/api/v1/hosts/bm1/reinstall", f.token, "")
	if code != 502 || !strings.Contains(string(body), "refused the user or password") {
		t.Errorf("reinstall with a refusing BMC: %d %s", code, body)
	}
	_, one := f.do("GET", "/api/v1/hosts/bm1", f.token, "")
	_, all := f.do("GET", "/api/v1/hosts", f.token, "")
	_, tl := f.do("GET", "/api/v1/hosts/bm1/timeline", f.token, "")
	for _, s := range []string{string(body), string(one), string(all), string(tl)} {
		if strings.Contains(s, "bmcadmin") || strings.Contains(s, "bm1.pw") {
			t.Errorf("a BMC credential in an answer: %s", s)
		}
	}
	if !strings.Contains(string(tl), "refused the user or password") {
		t.Errorf("the refusal is not on the timeline: %s", tl)
	}
}
