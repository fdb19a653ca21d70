package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

// fakeLeases are the leases kickstand "committed".
type fakeLeases struct {
	v4 map[netip.Addr]store.Lease
	v6 map[netip.Addr]store.Lease
}

func (f *fakeLeases) Lease(_ context.Context, a netip.Addr) (*store.Lease, error) {
	if l, ok := f.v4[a]; ok {
		return &l, nil
	}
	if l, ok := f.v6[a]; ok {
		return &l, nil
	}
	return nil, store.ErrNotFound
}

type rig struct {
	t      *testing.T
	st     *storetest.Fake
	cfg    *inventory.Config
	clock  time.Time
	lc     *Service
	b      *boot.Booter
	leases *fakeLeases
	minted int
}

var (
	ctx       = context.Background()
	addrStat  = netip.MustParseAddr("192.0.2.10")
	addrV6    = netip.MustParseAddr("2001:db8::b")
	addrPool  = netip.MustParseAddr("192.0.2.150")
	addrPool6 = netip.MustParseAddr("2001:db8::150")
	addrOther = netip.MustParseAddr("192.0.2.99")
	server4   = netip.MustParseAddr("192.0.2.1")
)

// newRig: hosts stat (static 192.0.2.10), v6 (static 2001:db8::b) and pool
// (no static address, MAC ...:0c), all installing; tokens tok1, tok2, ...
func newRig(t *testing.T, edit func(*inventory.Config)) *rig {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	r := &rig{t: t, st: storetest.NewFake(), clock: time.Now(), leases: &fakeLeases{v4: map[netip.Addr]store.Lease{}, v6: map[netip.Addr]store.Lease{}}}
	r.cfg = &inventory.Config{
		Path:     filepath.Join(dir, "k.yaml"),
		Server:   inventory.Server{AddressV4: "192.0.2.1", AddressV6: "2001:db8::1", HTTPPort: 8080, DataDir: dir, Templates: filepath.Join(dir, "templates"), TokenTTL: inventory.Duration(6 * time.Hour)},
		Menu:     inventory.Menu{Unknown: "menu", Title: "m", Timeout: 5},
		Distros:  []inventory.Distro{{Name: "el9", Release: "rhel9", Arch: "x86_64", Kernel: "vmlinuz", Initrds: []string{"initrd.img"}}},
		Profiles: []inventory.Profile{{Name: "p", Distro: "el9", Loader: "ipxe"}},
		Hosts: []inventory.Host{
			{Name: "stat", MACs: []string{"52:54:00:00:00:0a"}, IPv4: "192.0.2.10/24", Profile: "p", Netboot: inventory.StateInstall},
			{Name: "v6", MACs: []string{"52:54:00:00:00:0b"}, IPv6: "2001:db8::b/64", Profile: "p", Netboot: inventory.StateInstall},
			{Name: "pool", MACs: []string{"52:54:00:00:00:0c"}, Profile: "p", Netboot: inventory.StateInstall},
		},
	}
	if edit != nil {
		edit(r.cfg)
	}
	get := func() *inventory.Config { return r.cfg }
	now := func() time.Time { return r.clock }
	r.b = &boot.Booter{Store: r.st, Leases: r.leases, Config: get, Now: now}
	r.lc = New(Deps{Store: r.st, Booter: r.b, Config: get, Now: now,
		NewToken: func() string { r.minted++; return fmt.Sprintf("tok%d", r.minted) }})
	r.sync()
	return r
}

func (r *rig) sync() store.SyncReport {
	r.t.Helper()
	rep, err := r.lc.SyncFile(ctx, r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

func (r *rig) host(name string) *inventory.HostRecord {
	r.t.Helper()
	h, err := r.st.Host(ctx, name)
	if err != nil {
		r.t.Fatal(err)
	}
	return h
}

func (r *rig) events(host, kind string) []store.Event {
	r.t.Helper()
	evs, err := r.st.Events(ctx, host, 0, 0)
	if err != nil {
		r.t.Fatal(err)
	}
	var out []store.Event
	for _, e := range evs {
		if kind == "" || e.Kind == kind {
			out = append(out, e)
		}
	}
	return out
}

func (r *rig) lease4(a netip.Addr, mac string) {
	r.leases.v4[a] = store.Lease{Addr: a, MAC: mac, State: store.LeaseBound, Expires: r.clock.Add(time.Hour)}
}

func isRefusal(err error, why string) bool {
	var ref *Refusal
	return errors.As(err, &ref) && ref.Why == why && errors.Is(err, ErrNotFound)
}

// Every state change records exactly one state event saying who caused it;
// a token exists only while the host is in install.
func TestStateChangesRecordOneEventEach(t *testing.T) {
	r := newRig(t, nil)
	if n := len(r.events("stat", "state")); n != 1 {
		t.Fatalf("the file's install made %d state events, want 1", n)
	}
	h, err := r.lc.SetState(ctx, "stat", inventory.StateLocal, ByAPI("ops"))
	if err != nil || h.Token != "" || h.State != inventory.StateLocal {
		t.Fatalf("local: %+v, %v", h, err)
	}
	h, err = r.lc.Build(ctx, "stat", ByCLI)
	if err != nil || h.Token == "" || !h.TokenExpires.Equal(r.clock.Add(6*time.Hour)) {
		t.Fatalf("build: %+v, %v", h, err)
	}
	if _, err := r.lc.SetState(ctx, "stat", "bogus", ByCLI); err == nil {
		t.Error("a bogus state was accepted")
	}
	evs := r.events("stat", "state")
	if len(evs) != 3 {
		t.Fatalf("%d state events, want 3: %+v", len(evs), evs)
	}
	want := []struct{ to, by, who string }{{"install", "file", ""}, {"local", "api", "ops"}, {"install", "cli", ""}}
	for i, w := range want {
		e := evs[i]
		if e.Data["to"] != w.to || e.Data["by"] != w.by || (w.who != "" && e.Data["who"] != w.who) {
			t.Errorf("event %d = %+v, want to %s by %s %s", i, e.Data, w.to, w.by, w.who)
		}
	}
}

// The remove-and-restore scenario: a built host whose file entry goes and
// comes back stays local; the timeline shows both file events.
func TestRemovedAndRestoredHostStaysBuilt(t *testing.T) {
	r := newRig(t, nil)
	if _, err := r.lc.Callback(ctx, Request{Token: "tok1", Client: addrStat, Server: server4}, "built", nil); err != nil {
		t.Fatal(err)
	}
	hosts := r.cfg.Hosts
	r.cfg.Hosts = nil
	if rep := r.sync(); len(rep.Retired) != 3 {
		t.Errorf("retired = %+v", rep.Retired)
	}
	r.cfg.Hosts = hosts
	r.sync()
	h := r.host("stat")
	if h.State != inventory.StateLocal || h.Token != "" {
		t.Fatalf("restored host is %s (token %v): a reinstall of a built machine", h.State, h.Token != "")
	}
	if len(r.events("stat", "inventory")) != 1 {
		t.Errorf("no removal event: %+v", r.events("stat", ""))
	}
	last := r.events("stat", "state")
	if e := last[len(last)-1]; e.Data["why"] != store.WhyRestored || e.Data["to"] != inventory.StateLocal || e.Data["by"] != "file" {
		t.Errorf("restore event = %+v", e)
	}
	// A file edit of netboot itself is what the file asks for, and says so.
	r.cfg.Hosts[0].Netboot = inventory.StateMenu
	r.sync()
	r.cfg.Hosts[0].Netboot = inventory.StateInstall
	r.sync()
	if h := r.host("stat"); h.State != inventory.StateInstall {
		t.Errorf("netboot: install edited in: state %s", h.State)
	}
	last = r.events("stat", "state")
	if e := last[len(last)-1]; e.Data["why"] != store.WhyNetboot || e.Data["to"] != inventory.StateInstall {
		t.Errorf("file edit event = %+v", e)
	}
}

// A token's request comes from its host, whatever the family: the static
// address, or a live lease of one of its MACs (v4 and v6).
func TestTokenNeedsTheHostsAddress(t *testing.T) {
	r := newRig(t, nil)
	ks := func(tok string, from netip.Addr) error {
		_, err := r.lc.Kickstart(ctx, Request{Token: tok, Client: from, Server: server4})
		return err
	}
	// stat: tok1, v6: tok2, pool: tok3
	if err := ks("tok1", addrStat); err != nil {
		t.Fatalf("own static address: %v", err)
	}
	if err := ks("tok2", addrV6); err != nil {
		t.Fatalf("own static IPv6 address: %v", err)
	}
	for _, c := range []struct {
		tok  string
		from netip.Addr
	}{
		{"tok1", addrOther}, {"tok1", addrV6}, {"tok1", netip.MustParseAddr("2001:db8::99")},
		{"tok2", addrStat}, {"tok3", addrPool}, {"tok3", addrPool6},
	} {
		if err := ks(c.tok, c.from); !isRefusal(err, WhyWrongAddress) {
			t.Errorf("%s from %s: %v, want refused for the address", c.tok, c.from, err)
		}
	}
	r.lease4(addrPool, "52:54:00:00:00:0c")
	r.leases.v6[addrPool6] = store.Lease{Addr: addrPool6, MAC: "52:54:00:00:00:0c", ClientID: "0003000152540000000c", State: store.LeaseBound, Expires: r.clock.Add(time.Hour)}
	if err := ks("tok3", addrPool); err != nil {
		t.Errorf("pool host from its v4 lease: %v", err)
	}
	if err := ks("tok3", addrPool6); err != nil {
		t.Errorf("pool host from its v6 lease: %v", err)
	}
	// A lease of another MAC, an expired or released lease: not the host.
	r.lease4(addrOther, "52:54:00:00:00:99")
	l := r.leases.v4[addrPool]
	l.Expires = r.clock.Add(-time.Second)
	r.leases.v4[addrPool] = l
	for _, a := range []netip.Addr{addrOther, addrPool} {
		if err := ks("tok3", a); !isRefusal(err, WhyWrongAddress) {
			t.Errorf("tok3 from %s: %v", a, err)
		}
	}
	r.cfg.Server.TokenAnyAddress = true
	if err := ks("tok3", addrOther); err != nil {
		t.Errorf("token_any_address: %v", err)
	}
}

// Tokens work only in install and before expiry; leaving install clears
// them; a built repeated is "already recorded"; a superseded install's
// callback changes nothing.
func TestTokenLifetime(t *testing.T) {
	r := newRig(t, nil)
	req := Request{Token: "tok1", Client: addrStat, Server: server4}
	// stat rebuilt: tok1 is superseded by tok4.
	if _, err := r.lc.Build(ctx, "stat", ByCLI); err != nil {
		t.Fatal(err)
	}
	if _, err := r.lc.Callback(ctx, req, "built", nil); !isRefusal(err, WhyUnknownToken) {
		t.Errorf("superseded token's built: %v", err)
	}
	if h := r.host("stat"); h.State != inventory.StateInstall || h.Token != "tok4" {
		t.Fatalf("a superseded callback changed the host: %+v", h)
	}
	req.Token = "tok4"
	if msg, err := r.lc.Callback(ctx, req, "built", nil); err != nil || msg != Recorded {
		t.Fatalf("built: %q, %v", msg, err)
	}
	if h := r.host("stat"); h.State != inventory.StateLocal || h.Token != "" {
		t.Errorf("after built: %+v", h)
	}
	if msg, err := r.lc.Callback(ctx, req, "built", nil); err != nil || msg != AlreadyRecorded {
		t.Errorf("repeated built: %q, %v", msg, err)
	}
	if _, err := r.lc.Callback(ctx, Request{Token: "tok4", Client: addrOther}, "built", nil); err == nil {
		t.Error("a repeat from another address was told it was recorded")
	}
	for _, what := range []string{"failed", "built"} {
		if _, err := r.lc.Kickstart(ctx, req); !isRefusal(err, WhyUnknownToken) {
			t.Errorf("kickstart after built: %v", err)
		}
		if what == "failed" {
			if _, err := r.lc.Callback(ctx, req, what, strings.NewReader("x")); !isRefusal(err, WhyUnknownToken) {
				t.Errorf("failed after built: %v", err)
			}
		}
	}
	if n := len(r.events("stat", "callback.built")); n != 1 {
		t.Errorf("%d built events, want 1", n)
	}
	r.clock = r.clock.Add(7 * time.Hour) // v6's tok2 expired
	if _, err := r.lc.Kickstart(ctx, Request{Token: "tok2", Client: addrV6}); !isRefusal(err, WhyExpired) {
		t.Errorf("expired token: %v", err)
	}
	if _, err := r.lc.Callback(ctx, Request{Token: "tok2", Client: addrV6}, "failed", strings.NewReader("x")); !isRefusal(err, WhyExpired) {
		t.Errorf("expired token's failed: %v", err)
	}
}

// failed is accepted once per install; what is kept is bounded.
func TestFailedOnceAndBounded(t *testing.T) {
	r := newRig(t, nil)
	req := Request{Token: "tok1", Client: addrStat, Server: server4}
	big := bytes.Repeat([]byte("a line of the installer's log that goes on and on\n"), 200000) // 10 MB
	if _, err := r.lc.Callback(ctx, req, "failed", bytes.NewReader(big)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.lc.Callback(ctx, req, "failed", bytes.NewReader(big)); !errors.Is(err, ErrReported) {
		t.Errorf("second failed: %v, want ErrReported", err)
	}
	evs := r.events("stat", "callback.failed")
	if len(evs) != 1 {
		t.Fatalf("%d failed events", len(evs))
	}
	if tail, _ := evs[0].Data["log_tail"].(string); len(tail) > maxTailBytes || tail == "" {
		t.Errorf("stored tail is %d bytes, cap %d", len(tail), maxTailBytes)
	}
	logs, _ := filepath.Glob(filepath.Join(r.cfg.Server.DataDir, "logs", "stat-*.log"))
	if len(logs) != 1 {
		t.Fatalf("logs = %v", logs)
	}
	if st, _ := os.Stat(logs[0]); st.Size() != maxLogUpload {
		t.Errorf("kept log is %d bytes, cap %d", st.Size(), maxLogUpload)
	}
}

// Callbacks are rate limited per source.
func TestCallbackRateLimit(t *testing.T) {
	r := newRig(t, nil)
	limited := 0
	for i := 0; i < 40; i++ {
		if _, err := r.lc.Callback(ctx, Request{Token: "nope", Client: addrOther}, "built", nil); errors.Is(err, ErrLimited) {
			limited++
		}
	}
	if limited < 25 {
		t.Errorf("%d of 40 bursted callbacks limited", limited)
	}
	if _, err := r.lc.Callback(ctx, Request{Token: "tok1", Client: addrStat}, "built", nil); err != nil {
		t.Errorf("another source was limited too: %v", err)
	}
}

// The menu carries no tokens; a choice binds the choosing machine to the
// host, on its timeline, and only then is the install (with its token)
// returned. Only machines the menu is shown to may choose.
func TestMenuChoice(t *testing.T) {
	r := newRig(t, nil)
	unknown := netip.MustParseAddr("192.0.2.160")
	r.lease4(unknown, "52:54:00:00:00:77") // a machine not in the inventory
	f := boot.Facts{Firmware: boot.FirmwareIPXE, Arch: boot.ArchNone, ClientIP: unknown, ServerIP: server4, Family: 4}
	p, err := r.b.BootSpec(ctx, f)
	if err != nil || p.Action != boot.ActionMenu || len(p.Menu) != 3 {
		t.Fatalf("menu: %+v, %v", p, err)
	}
	if strings.Contains(fmt.Sprintf("%+v", p), "tok") {
		t.Fatalf("the menu carries a token: %+v", p)
	}
	if _, err := r.lc.Kickstart(ctx, Request{Token: "tok3", Client: unknown}); err == nil {
		t.Fatal("kickstart served before any choice")
	}
	p, err = r.lc.Choose(ctx, f, "pool")
	if err != nil || p.Action != boot.ActionInstall || p.Host != "pool" || !strings.Contains(p.Cmdline, "/ks/tok3") {
		t.Fatalf("choice: %+v, %v", p, err)
	}
	if _, err := r.lc.Kickstart(ctx, Request{Token: "tok3", Client: unknown, Server: server4}); err != nil {
		t.Errorf("the chooser's kickstart: %v", err)
	}
	if _, err := r.lc.Kickstart(ctx, Request{Token: "tok3", Client: addrOther}); err == nil {
		t.Error("another address got the chosen host's kickstart")
	}
	evs := r.events("pool", "menu")
	if len(evs) != 1 || evs[0].Data["mac"] != "52:54:00:00:00:77" {
		t.Errorf("menu events = %+v", evs)
	}
	// A known host that is installing is not shown the menu, so its
	// "choice" of another host gets it nothing but its own install.
	p, _ = r.lc.Choose(ctx, boot.Facts{Firmware: boot.FirmwareIPXE, Arch: boot.ArchNone, ClientIP: addrStat, ServerIP: server4, Family: 4}, "v6")
	if p.Host != "stat" || strings.Contains(p.Cmdline, "tok2") {
		t.Errorf("a host chose another host: %+v", p)
	}
}

// With menu.unknown: ignore, ?host= returns nothing to an unknown machine.
func TestMenuIgnoreRefusesChoices(t *testing.T) {
	r := newRig(t, func(c *inventory.Config) { c.Menu.Unknown = "ignore" })
	f := boot.Facts{Firmware: boot.FirmwareIPXE, Arch: boot.ArchNone, ClientIP: addrOther, ServerIP: server4, Family: 4}
	p, err := r.lc.Choose(ctx, f, "pool")
	if err != nil || p.Action != boot.ActionNone || p.Cmdline != "" {
		t.Fatalf("choice with menu.unknown ignore: %+v, %v", p, err)
	}
	if _, err := r.lc.Kickstart(ctx, Request{Token: "tok3", Client: addrOther}); err == nil {
		t.Error("kickstart served after an ignored choice")
	}
}

// A kickstart is rendered once per host and inputs: a template edit or a
// host change shows; otherwise the cached text is served.
func TestKickstartCache(t *testing.T) {
	r := newRig(t, func(c *inventory.Config) { c.Profiles[0].Kickstart = "k.ks" })
	tmpl := filepath.Join(r.cfg.Server.Templates, "k.ks")
	os.WriteFile(tmpl, []byte("text\n# one {{ .host.name }}\n"), 0o644)
	req := Request{Token: "tok1", Client: addrStat, Server: server4}
	get := func() string {
		ks, err := r.lc.Kickstart(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		return string(ks.Body)
	}
	first := get()
	if !strings.Contains(first, "# one stat") {
		t.Fatalf("kickstart:\n%s", first)
	}
	os.WriteFile(tmpl, []byte("text\n# two {{ .host.name }}\n"), 0o644)
	os.Chtimes(tmpl, r.clock.Add(time.Minute), r.clock.Add(time.Minute))
	if got := get(); got != first {
		t.Errorf("served a fresh render within the second:\n%s", got)
	}
	r.clock = r.clock.Add(1500 * time.Millisecond)
	if got := get(); !strings.Contains(got, "# two stat") {
		t.Errorf("the template edit did not show:\n%s", got)
	}
	r.cfg.Hosts[0].Timezone = "UTC"
	r.cfg.Profiles[0].KernelArgs = "quiet"
	r.sync()
	if _, err := r.lc.Kickstart(ctx, req); err != nil {
		t.Errorf("after a resync: %v", err)
	}
}

// cutStore cancels the request's context as the state change begins (an
// installer whose connection dropped, a callback past its read deadline
// behind a busy store) and, like a database driver, fails calls made on
// a cancelled context.
type cutStore struct {
	*storetest.Fake
	cut func()
}

func (c *cutStore) SetHostState(ctx context.Context, name string, t store.Transition) (*inventory.HostRecord, error) {
	c.cut()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return c.Fake.SetHostState(ctx, name, t)
}

func (c *cutStore) AppendEvents(ctx context.Context, evs []store.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.Fake.AppendEvents(ctx, evs)
}

// A callback whose request is cancelled once the state change has begun
// finishes it, with its timeline entry: the installer that retries is told
// it was recorded, and no state changes without its record.
func TestCallbackFinishesWhenItsRequestIsCut(t *testing.T) {
	r := newRig(t, nil)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cs := &cutStore{Fake: r.st, cut: cancel}
	get := func() *inventory.Config { return r.cfg }
	lc := New(Deps{Store: cs, Booter: r.b, Config: get, Now: func() time.Time { return r.clock }, NewToken: func() string { return "never" }})
	req := Request{Token: "tok1", Client: addrStat, Server: server4}
	if msg, err := lc.Callback(rctx, req, "built", nil); err != nil || msg != Recorded {
		t.Fatalf("built, cut mid-way: %q, %v", msg, err)
	}
	if h := r.host("stat"); h.State != inventory.StateLocal {
		t.Errorf("state after the cut callback: %s", h.State)
	}
	evs, err := r.st.Events(ctx, "stat", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var changed bool
	for _, e := range evs {
		changed = changed || strings.Contains(e.Detail, "-> local")
	}
	if !changed {
		t.Errorf("the state change is not on the timeline: %+v", evs)
	}
	if msg, err := lc.Callback(ctx, req, "built", nil); err != nil || msg != AlreadyRecorded {
		t.Errorf("the installer's retry: %q, %v", msg, err)
	}
}
