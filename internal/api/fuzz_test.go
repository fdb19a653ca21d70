package api

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

var tokenURL = regexp.MustCompile(`/(?:ks|cb)/[A-Za-z0-9]{8,}`)

// FuzzRedact: redaction is stable (the API may redact twice) and no
// kickstart or callback URL keeps its token.
func FuzzRedact(f *testing.F) {
	for _, s := range []string{
		"fetching http://192.0.2.1:8080/ks/ABCDEFGHIJKLMNOPQRSTUVWXYZ",
		"curl -X POST http://[2001:db8::1]/cb/ABCDEFGHIJKLMNOPQRSTUV23/built",
		"inst.vncpassword=secret inst.ks=http://h/ks/TOKENTOKEN",
		"repo --url=http://user:pa55@mirror.example/el9",
		`rootpw --iscrypted $6$rounds=4096$salt$hash.hash/hash`,
		`password="with spaces" other`,
		"/ks/<token>", "", "/ks//cb/x/", "PASS=x:y@z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := redact(s)
		if again := redact(out); again != out {
			t.Errorf("not stable:\n%q\n%q\n%q", s, out, again)
		}
		for _, m := range tokenURL.FindAllString(s, -1) {
			if strings.Contains(out, m) {
				t.Errorf("token URL %q survived in %q", m, out)
			}
		}
	})
}

// FuzzStateChange: whatever the body and Authorization header, a state
// change is refused (401, 400) or done (200), never a server error, and
// only a good token and a good body change anything.
func FuzzStateChange(f *testing.F) {
	tok := NewToken()
	for _, c := range [][2]string{
		{"Bearer " + tok, `{"state":"local"}`},
		{"Bearer " + tok, `{"state":"install"}`},
		{"Bearer " + tok, `{"state":"menu","x":1}`},
		{"Bearer " + tok, `{"state":null}`},
		{"Bearer " + tok, `[]`},
		{"bearer  " + tok, `{"state":"menu"}`},
		{"Bearer x", `{"state":"local"}`},
		{"", `{"state":"local"}`},
	} {
		f.Add(c[0], c[1])
	}
	ctx := context.Background()
	st := storetest.NewFake()
	if _, err := st.SyncDeclared(ctx, storetest.Declared(time.Now())); err != nil {
		f.Fatal(err)
	}
	if err := st.CreateAPIToken(ctx, store.APIToken{Name: "fuzz", Hash: HashToken(tok), CreatedAt: time.Now()}); err != nil {
		f.Fatal(err)
	}
	cfg := func() *inventory.Config { return &inventory.Config{} }
	h := Handler(Deps{Store: st, Lifecycle: install.New(install.Deps{Store: st, Booter: boot.NewBooter(st, cfg), Config: cfg})})
	f.Fuzz(func(t *testing.T, auth, body string) {
		if _, err := st.SetHostState(ctx, "b", store.Transition{State: inventory.StateLocal}); err != nil {
			t.Fatal(err)
		}
		before, _ := st.Host(ctx, "b")
		r := httptest.NewRequest("POST", "/api/v1/hosts/b/state", strings.NewReader(body))
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		after, _ := st.Host(ctx, "b")
		switch w.Code {
		case 200:
			if got, ok := bearer(r); !ok || got != tok {
				t.Errorf("200 for Authorization %q", auth)
			}
		case 400, 401:
			if after.State != before.State || after.Token != before.Token {
				t.Errorf("refused (%d) but changed: %+v", w.Code, after)
			}
		default:
			t.Errorf("status %d for %q %q: %s", w.Code, auth, body, w.Body)
		}
	})
}

// FuzzLiveHost sends arbitrary bodies to POST /hosts: the answer is a
// created host that passed the file's checks, or a 400/409 that stored
// nothing; never a 500 or a panic.
func FuzzLiveHost(f *testing.F) {
	for _, b := range []string{
		`{"name":"web1","profile":"p","macs":["52:54:00:aa:00:01"]}`,
		`{"name":"web1","profile":"p","macs":["52:54:00:aa:00:01"],"ipv4":"192.0.2.300/24"}`,
		`{"name":"web1","profile":"p","uuid":"00000000-0000-0000-0000-0000000000ff","ipv6":"2001:db8::5/64","gateway6":"2001:db8::1"}`,
		`{"name":"a","profile":"p","macs":["52:54:00:aa:00:02"]}`,
		`{"name":"x y","profile":"nope"}`,
		`{"name":"web1","vars":{"rootpw":"$6$x"},"netboot":"install","profile":"p","macs":["52:54:00:aa:00:03"]}`,
		`{"ipaddr":"1"}`, `[]`, `null`, `{"macs":"x"}`,
	} {
		f.Add(b)
	}
	ctx := context.Background()
	cfg := func() *inventory.Config { return &inventory.Config{} }
	f.Fuzz(func(t *testing.T, body string) {
		st := storetest.NewFake()
		if _, err := st.SyncDeclared(ctx, storetest.Declared(time.Now())); err != nil {
			t.Fatal(err)
		}
		tok := NewToken()
		st.CreateAPIToken(ctx, store.APIToken{Name: "fuzz", Hash: HashToken(tok), CreatedAt: time.Now()})
		h := Handler(Deps{Store: st, Lifecycle: install.New(install.Deps{Store: st, Booter: boot.NewBooter(st, cfg), Config: cfg})})
		r := httptest.NewRequest("POST", "/api/v1/hosts", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		hosts, _ := st.Hosts(ctx)
		switch w.Code {
		case 201:
			if len(hosts) != 3 {
				t.Errorf("201 but %d hosts", len(hosts))
			}
		case 400, 409:
			if len(hosts) != 2 {
				t.Errorf("refused (%d) but stored a host: %s", w.Code, w.Body)
			}
		default:
			t.Errorf("status %d for %q: %s", w.Code, body, w.Body)
		}
	})
}
