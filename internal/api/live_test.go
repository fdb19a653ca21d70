package api

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Issue 16 item 1 through the API: hosts, profiles and distros are made,
// changed and removed with the file's checks; the file's own are refused
// with a 409 that says so; every change is on the timeline with the
// token's name.
func TestLiveObjectsAPI(t *testing.T) {
	f := newFixture(t)
	tok := f.token
	ctx := context.Background()

	for _, c := range []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"POST", "/api/v1/hosts", `{"name":"web1","profile":"p","macs":["52:54:00:aa:00:01"]}`, 401, "bearer token"},
		{"POST", "/api/v1/hosts", `{"name":"web1","profile":"nope","ipv4":"192.0.2.300/24","macs":["52:54:00:aa:00:01"]}`, 400, `host web1: ipv4: "192.0.2.300/24" is not an address/prefix`},
		{"POST", "/api/v1/hosts", `{"name":"web1","profile":"nope","macs":["52:54:00:aa:00:01"]}`, 400, `host web1: profile: unknown profile "nope"`},
		{"POST", "/api/v1/hosts", `{"name":"web1","ipaddr":"192.0.2.1"}`, 400, `unknown field "ipaddr"`},
		{"POST", "/api/v1/hosts", `{"name":"web1","profile":"p","macs":["52:54:00:00:00:0a"]}`, 409, "MAC 52:54:00:00:00:0a is also used by host a"},
		{"POST", "/api/v1/hosts", `{"name":"a","profile":"p","macs":["52:54:00:aa:00:09"]}`, 409, "host a is declared in the config file, which owns it"},
		{"PATCH", "/api/v1/hosts/a", `{"ipv4":"192.0.2.99/24"}`, 409, "host a is declared in the config file, which owns it: edit it there"},
		{"DELETE", "/api/v1/hosts/a", ``, 409, "which owns it"},
		{"PATCH", "/api/v1/profiles/p", `{"loader":"grub"}`, 409, "profile p is declared in the config file"},
		{"DELETE", "/api/v1/distros/el9", ``, 409, "distro el9 is declared in the config file"},
		{"DELETE", "/api/v1/hosts/zzz", ``, 404, "not found"},
		{"POST", "/api/v1/profiles", `{"name":"lp","distro":"el9","loader":"floppy"}`, 400, `profile lp: loader: unknown loader "floppy"`},
		{"POST", "/api/v1/distros", `{"name":"d1","release":"rhel9","kernel":"../k","initrd":["i"]}`, 400, `distro d1: kernel: "../k" must be a path inside the tree`},
	} {
		token := tok
		if c.want == 401 {
			token = ""
		}
		code, body := f.do(c.method, c.path, token, c.body)
		if code != c.want || !strings.Contains(decode[errorBody](t, body).Error, c.msg) {
			t.Errorf("%s %s %s = %d %s, want %d and %q", c.method, c.path, c.body, code, body, c.want, c.msg)
		}
	}

	// A live distro, profile and host.
	steps := []struct {
		method, path, body string
		want               int
	}{
		{"POST", "/api/v1/distros", `{"name":"d1","release":"rhel9","kernel":"vmlinuz","initrd":["initrd.img"]}`, 201},
		{"POST", "/api/v1/profiles", `{"name":"lp","distro":"d1"}`, 201},
		{"PATCH", "/api/v1/profiles/lp", `{"kernel_args":"inst.text"}`, 200},
		{"POST", "/api/v1/hosts", `{"name":"web1","profile":"lp","macs":["52-54-00-AA-00-01"],"netboot":"install","vars":{"rootpw":"` + rootHash + `"}}`, 201},
		{"PATCH", "/api/v1/hosts/web1", `{"ipv4":"192.0.2.61/24"}`, 200},
	}
	for _, s := range steps {
		if code, body := f.do(s.method, s.path, tok, s.body); code != s.want {
			t.Fatalf("%s %s = %d %s", s.method, s.path, code, body)
		}
	}
	code, body := f.do("GET", "/api/v1/hosts/web1", tok, "")
	h := decode[Host](t, body)
	if code != 200 || h.Origin != inventory.OriginLive || h.State != "install" || h.IPv4 != "192.0.2.61/24" || h.MACs[0] != "52:54:00:aa:00:01" || len(h.Vars) != 1 || h.Vars[0] != "rootpw" {
		t.Errorf("GET web1 = %d %+v", code, h)
	}
	if rec, _ := f.st.Host(ctx, "web1"); rec.Vars["rootpw"] != rootHash {
		t.Errorf("the PATCH lost the host's variables: %v", rec.Vars)
	}
	// In vars, null removes a variable (a JSON merge patch); others stay.
	if code, body := f.do("PATCH", "/api/v1/hosts/web1", tok, `{"vars":{"user":"ops"}}`); code != 200 {
		t.Fatalf("PATCH vars = %d %s", code, body)
	}
	if code, body := f.do("PATCH", "/api/v1/hosts/web1", tok, `{"vars":{"user":null}}`); code != 200 {
		t.Fatalf("PATCH vars null = %d %s", code, body)
	}
	if rec, _ := f.st.Host(ctx, "web1"); rec.Vars["rootpw"] != rootHash || len(rec.Vars) != 1 {
		t.Errorf("after vars.user null: %v", rec.Vars)
	}
	_, body = f.do("GET", "/api/v1/profiles", tok, "")
	ps := decode[[]Profile](t, body)
	if len(ps) != 2 || ps[0].Name != "lp" || ps[0].Origin != "live" || ps[0].KernelArgs != "inst.text" || ps[1].Origin != "file" {
		t.Errorf("profiles %+v", ps)
	}
	// A PATCH of netboot is a state change, as POST .../state would make it.
	code, body = f.do("PATCH", "/api/v1/hosts/web1", tok, `{"netboot":"local"}`)
	if h := decode[Host](t, body); code != 200 || h.State != "local" {
		t.Errorf("PATCH netboot = %d %s", code, body)
	}
	code, body = f.do("DELETE", "/api/v1/profiles/lp", tok, "")
	if code != 409 || !strings.Contains(string(body), "profile lp is used by host web1") {
		t.Errorf("DELETE a used profile = %d %s", code, body)
	}

	// Every change on the timeline, with the token's name.
	evs, _ := f.st.Events(ctx, "web1", 0, 0)
	var details []string
	for _, e := range evs {
		details = append(details, e.Detail)
	}
	all := strings.Join(details, "\n")
	for _, want := range []string{"host web1 added live (by api ops)", "(new) -> install (by api ops)", "host web1 edited live: ipv4 (by api ops)",
		"host web1 edited live: netboot (by api ops)", "install -> local (by api ops)"} {
		if !strings.Contains(all, want) {
			t.Errorf("web1's timeline lacks %q:\n%s", want, all)
		}
	}
	evs, _ = f.st.Events(ctx, "", 0, 0)
	all = ""
	for _, e := range evs {
		all += e.Detail + "\n"
	}
	for _, want := range []string{"distro d1 added live (by api ops)", "profile lp edited live (by api ops)"} {
		if !strings.Contains(all, want) {
			t.Errorf("events lack %q:\n%s", want, all)
		}
	}

	for _, s := range []string{"/api/v1/hosts/web1", "/api/v1/profiles/lp", "/api/v1/distros/d1"} {
		if code, body := f.do("DELETE", s, tok, ""); code != 200 {
			t.Fatalf("DELETE %s = %d %s", s, code, body)
		}
	}
	if _, err := f.st.Host(ctx, "web1"); err == nil {
		t.Error("web1 still stored")
	}
	if _, err := f.st.Distro(ctx, "d1"); err == nil {
		t.Error("d1 still stored")
	}
}

// The rendered-config route is the preview the server answers from;
// secrets stay hidden unless a valid token asks for them, and the build
// token never shows.
func TestRenderRoute(t *testing.T) {
	f := newFixture(t)
	code, body := f.do("GET", "/api/v1/hosts/a/render/ipxe", f.token, "")
	r := decode[Rendered](t, body)
	if code != 200 || !strings.Contains(r.Body, "#!ipxe") || !strings.Contains(r.Body, "/ks/<token>") || r.Secrets || len(r.Explain) == 0 {
		t.Errorf("render ipxe = %d %+v", code, r)
	}
	code, body = f.do("GET", "/api/v1/hosts/a/render/floppy", f.token, "")
	if code != 400 || !strings.Contains(string(body), `unknown kind \"floppy\"`) {
		t.Errorf("bad kind = %d %s", code, body)
	}
	code, _ = f.do("GET", "/api/v1/hosts/zzz/render/ipxe", f.token, "")
	if code != 404 {
		t.Errorf("unknown host = %d", code)
	}
	code, body = f.do("GET", "/api/v1/hosts/b/render/kickstart", f.token, "")
	if code != 400 || !strings.Contains(string(body), "not installing") {
		t.Errorf("kickstart of a host not installing = %d %s", code, body)
	}
	code, body = f.do("GET", "/api/v1/hosts/a/render/kickstart", f.token, "")
	r = decode[Rendered](t, body)
	if code != 200 || !strings.Contains(r.Body, "/cb/<token>/built") {
		t.Fatalf("render kickstart = %d %s", code, body)
	}
	// A secret in what is served: hidden, unless a valid token asks.
	for _, s := range []struct{ path, body string }{
		{"/api/v1/profiles", `{"name":"vnc","distro":"el9","kernel_args":"inst.vnc inst.vncpassword=hunter2"}`},
		{"/api/v1/hosts", `{"name":"v1","profile":"vnc","macs":["52:54:00:aa:00:02"],"netboot":"install","vars":{"ssh_keys":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com"}}`},
	} {
		if code, body := f.do("POST", s.path, f.token, s.body); code != 201 {
			t.Fatalf("POST %s = %d %s", s.path, code, body)
		}
	}
	// Its hosts rely on the profile's kickstart and vars: an edit that
	// would lock them out is refused.
	code, body = f.do("PATCH", "/api/v1/profiles/vnc", f.token, `{"vars":{"ssh_keys":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com"}}`)
	if code != 200 {
		t.Fatalf("PATCH profile vars = %d %s", code, body)
	}
	code, body = f.do("POST", "/api/v1/hosts", f.token, `{"name":"v2","profile":"vnc","macs":["52:54:00:aa:00:03"]}`)
	if code != 201 {
		t.Fatalf("POST a host on the profile's key = %d %s", code, body)
	}
	code, body = f.do("PATCH", "/api/v1/profiles/vnc", f.token, `{"vars":{"ssh_keys":""}}`)
	if code != 400 || !strings.Contains(string(body), "profile vnc: vars: nobody could log into host v2:") {
		t.Errorf("PATCH profile taking the last login away = %d %s", code, body)
	}
	code, body = f.do("GET", "/api/v1/hosts/v1/render/ipxe", f.token, "")
	if r = decode[Rendered](t, body); code != 200 || !strings.Contains(r.Body, "inst.vncpassword=<redacted>") {
		t.Errorf("render without secrets = %d %s", code, body)
	}
	get := func(token string) (int, string) {
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/hosts/v1/render/ipxe?secrets=true", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, s := get(f.token)
	if code != 200 || !strings.Contains(s, "inst.vncpassword=hunter2") || strings.Contains(s, buildTokenPrefix) || !strings.Contains(s, `"secrets":true`) {
		t.Errorf("secrets=true with a token = %d %s", code, s)
	}
	f.open.Store(true)
	code, s = get("")
	if code != 401 || strings.Contains(s, "hunter2") {
		t.Errorf("secrets=true without a token = %d %s", code, s)
	}
}
