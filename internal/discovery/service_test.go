package discovery

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

type rig struct {
	t   *testing.T
	st  *storetest.Fake
	lc  *install.Service
	svc *Service
	cfg *inventory.Config
}

func newRig(t *testing.T, unknown, rules string) *rig {
	t.Helper()
	dir := t.TempDir()
	cfg, err := inventory.Parse(filepath.Join(dir, "k.yaml"), []byte(fmt.Sprintf(`server:
  address_v4: 192.0.2.1
  http_port: 8080
menu:
  unknown: %s
discovery:
  poll: 4s
  jitter: 2s
  max_machines: 3
%s
distros:
  - {name: el9, release: rhel9, arch: x86_64, kernel: vmlinuz, initrd: [initrd.img]}
profiles:
  - {name: p, distro: el9, vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}}
hosts:
  - {name: known, macs: ["52:54:00:00:00:0a"], ipv4: 192.0.2.10/24, profile: p, netboot: install}
`, unknown, rules)))
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, st: storetest.NewFake(), cfg: cfg}
	get := func() *inventory.Config { return r.cfg }
	b := &boot.Booter{Store: r.st, Config: get}
	r.lc = install.New(install.Deps{Store: r.st, Booter: b, Config: get})
	if _, err := r.lc.SyncFile(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	r.svc = New(Deps{Store: r.st, Booter: b, Install: r.lc, Config: get})
	return r
}

func (r *rig) poll(from, query string) Answer {
	r.t.Helper()
	a, err := r.svc.Poll(context.Background(), boot.Facts{Firmware: boot.FirmwareIPXE, ClientIP: netip.MustParseAddr(from), Family: 4}, query)
	if err != nil {
		r.t.Fatal(err)
	}
	return a
}

func TestWaitingRoom(t *testing.T) {
	r := newRig(t, "discover", "")
	ctx := context.Background()
	a := r.poll("192.0.2.50", "mac=52:54:00:00:07:01&serial=S1&product=P1")
	if a.Status != http.StatusOK || !strings.Contains(string(a.Body), "sleep ") || a.Host != "" {
		t.Fatalf("first poll: %+v", a)
	}
	// The sleep is poll + up to jitter.
	var s int
	fmt.Sscanf(string(a.Body)[strings.Index(string(a.Body), "\nsleep ")+1:], "sleep %d", &s)
	if s < 4 || s > 6 {
		t.Errorf("sleep %d, want 4..6 s", s)
	}
	d, err := r.st.DiscoveredMachine(ctx, "52:54:00:00:07:01")
	if err != nil || d.Proof != "claimed" || d.Addr != "192.0.2.50" || d.Serial != "S1" {
		t.Fatalf("stored: %+v, %v", d, err)
	}
	if _, err := r.st.Host(ctx, "rack-1"); err == nil {
		t.Fatal("a report made a host")
	}
	// Its next polls are answered, but its report is written at most
	// once per refresh_every (the per-MAC limit).
	if a := r.poll("192.0.2.50", "mac=52:54:00:00:07:01&serial=S2"); a.Status != http.StatusOK {
		t.Fatalf("second poll: %+v", a)
	}
	if d, _ := r.st.DiscoveredMachine(ctx, "52:54:00:00:07:01"); d.Serial != "S1" || d.Reports != 1 {
		t.Errorf("a poll within refresh_every rewrote the report: %+v", d)
	}
	// Another address claiming a known host's MAC is neither that host
	// nor a new machine.
	if a := r.poll("192.0.2.77", "mac=52:54:00:00:00:0a"); a.Host != "" || a.Refused == "" || strings.Contains(string(a.Body), "/ks/") {
		t.Fatalf("a claim of a known host's MAC: %+v", a)
	}
	if _, err := r.st.DiscoveredMachine(ctx, "52:54:00:00:00:0a"); err == nil {
		t.Fatal("a claim of a known host's MAC was stored as a discovered machine")
	}
	// A known host polling gets its own boot script.
	if a := r.poll("192.0.2.10", "mac=52:54:00:00:00:0a"); a.Host != "known" || !strings.Contains(string(a.Body), "kickstand: installing known") {
		t.Fatalf("known host's poll: %+v", a)
	}
	// Assigned: the poll from the address it reported from installs it.
	if _, err := r.lc.AssignDiscovered(ctx, "52:54:00:00:07:01", inventory.Host{Name: "rack-1", Profile: "p"}, install.ByCLI); err != nil {
		t.Fatal(err)
	}
	// Another address claiming its MAC gets nothing of it.
	if a := r.poll("192.0.2.66", "mac=52:54:00:00:07:01"); a.Host != "" || strings.Contains(string(a.Body), "/ks/") || a.Refused == "" {
		t.Fatalf("a poll naming the machine's MAC from elsewhere: %+v", a)
	}
	a = r.poll("192.0.2.50", "mac=52:54:00:00:07:01&serial=S1")
	if a.Host != "rack-1" || !strings.Contains(string(a.Body), "kickstand: installing rack-1") || !strings.Contains(string(a.Body), "/ks/") {
		t.Fatalf("the assigned machine's poll: %+v\n%s", a, a.Body)
	}
	h, _ := r.st.Host(ctx, "rack-1")
	if h.State != inventory.StateInstall || h.Origin != inventory.OriginLive || h.MACs[0] != "52:54:00:00:07:01" {
		t.Errorf("the new host: %+v", h)
	}
	evs, _ := r.st.Events(ctx, "rack-1", 0, 0)
	if len(evs) < 2 || evs[0].Kind != "discovery" || !strings.Contains(evs[1].Detail, "(new) -> install (by cli)") {
		t.Errorf("rack-1's timeline: %+v", evs)
	}
	// A second assignment of the same machine is refused.
	if _, err := r.lc.AssignDiscovered(ctx, "52:54:00:00:07:01", inventory.Host{Name: "rack-2", Profile: "p"}, install.ByCLI); err == nil {
		t.Error("the machine was assigned twice")
	}
	// Bad names and profiles are refused as host add refuses them.
	r.poll("192.0.2.51", "mac=52:54:00:00:07:02")
	for _, h := range []inventory.Host{{Name: "bad name", Profile: "p"}, {Name: "ok", Profile: "nope"}} {
		var inv *install.InvalidError
		if _, err := r.lc.AssignDiscovered(ctx, "52:54:00:00:07:02", h, install.ByCLI); err == nil || !errors.As(err, &inv) {
			t.Errorf("assign as %+v: %v, want an InvalidError", h, err)
		}
	}
}

func TestCapAndLimits(t *testing.T) {
	r := newRig(t, "discover", "")
	for i := range 5 {
		r.poll(fmt.Sprintf("192.0.2.%d", 100+i), fmt.Sprintf("mac=52:54:00:00:08:%02x", i))
	}
	ds, _ := r.st.DiscoveredMachines(context.Background())
	if len(ds) != 3 {
		t.Errorf("%d machines kept, want the cap, 3", len(ds))
	}
	var limited int
	for range 20 {
		if a := r.poll("192.0.2.99", "mac=52:54:00:00:09:01"); a.Status == http.StatusTooManyRequests {
			limited++
		}
	}
	if limited == 0 {
		t.Error("20 polls at once from one address were never limited")
	}
	if a := r.poll("192.0.2.98", "mac=52:54:00:00:09:02&serial="+strings.Repeat("x", 300)); a.Status != http.StatusBadRequest {
		t.Errorf("oversize field: %+v", a)
	}
}

func TestDiscoveryOff(t *testing.T) {
	r := newRig(t, "menu", "")
	if a := r.poll("192.0.2.50", "mac=52:54:00:00:07:01"); a.Status != http.StatusNotFound {
		t.Fatalf("with menu.unknown: menu: %+v", a)
	}
	ds, _ := r.st.DiscoveredMachines(context.Background())
	if len(ds) != 0 {
		t.Fatalf("stored with discovery off: %+v", ds)
	}
}

// Rules assign a matching machine at its first report: its answer is
// already the install. Machines that match no rule wait.
func TestRules(t *testing.T) {
	r := newRig(t, "discover", `  rules:
    - {serial: "AUTO-7", name: "node-{serial}", profile: p}
    - {mac_prefix: "52:54:00:0f", product: "Blade", name: "blade-{mac}", profile: p}`)
	a := r.poll("192.0.2.60", "mac=52:54:00:00:07:07&serial=AUTO-7")
	if a.Host != "node-auto-7" || !strings.Contains(string(a.Body), "kickstand: installing node-auto-7") {
		t.Fatalf("serial rule: %+v\n%s", a, a.Body)
	}
	a = r.poll("192.0.2.61", "mac=52:54:00:0f:00:01&product=Blade")
	if a.Host != "blade-5254000f0001" {
		t.Fatalf("mac prefix + product rule: %+v", a)
	}
	if a := r.poll("192.0.2.62", "mac=52:54:00:0f:00:02&product=Other"); a.Host != "" {
		t.Fatalf("a machine matching no rule was assigned: %+v", a)
	}
	evs, _ := r.st.Events(context.Background(), "node-auto-7", 0, 0)
	if len(evs) < 2 || !strings.Contains(evs[1].Detail, "by discovery rule 0") {
		t.Errorf("the rule's assignment is not on the timeline: %+v", evs)
	}
}

func TestRulesRefusedAtLoad(t *testing.T) {
	for _, rules := range []string{
		"  rules:\n    - {name: x, profile: p}",
		"  rules:\n    - {serial: S, name: x, profile: nope}",
		"  rules:\n    - {mac_prefix: zz, name: x, profile: p}",
	} {
		_, err := inventory.Parse("k.yaml", []byte("discovery:\n"+rules+"\ndistros:\n  - {name: el9, release: rhel9, kernel: v, initrd: [i]}\nprofiles:\n  - {name: p, distro: el9}\n"))
		if err == nil || !strings.Contains(err.Error(), "discovery.rules[0]") {
			t.Errorf("%s: %v", rules, err)
		}
	}
}
