package e2e

import (
	"context"
	"encoding/json"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// discoveryConfig is the lab with menu.unknown: discover and a quick poll.
func discoveryConfig(t *testing.T) (cfg, data string) {
	return labConfig(t, func(s string) string {
		return s + `
menu:
  unknown: discover
discovery:
  poll: 2s
  jitter: 1s
`
	})
}

// discovered reads `kickstand discovered list -o json`.
func (k *kickstand) discovered(t *testing.T) []store.Discovered {
	t.Helper()
	out, err := exec.Command(k.bin, "discovered", "list", "--output", "json", "--config", k.cfg, "--data", k.data).Output()
	if err != nil {
		t.Fatalf("discovered list: %v\n%s", err, out)
	}
	var ds []store.Discovered
	if err := json.Unmarshal(out, &ds); err != nil {
		t.Fatalf("discovered list json: %v\n%s", err, out)
	}
	return ds
}

// waitDiscovered waits for a machine to appear in `discovered list`.
func (k *kickstand) waitDiscovered(t *testing.T, mac string, d time.Duration) *store.Discovered {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, m := range k.discovered(t) {
			if m.MAC == mac {
				return &m
			}
		}
		time.Sleep(time.Second)
	}
	return nil
}

// SMBIOS values QEMU gives the VM, as the report must show them.
const (
	discMAC    = "52:54:00:00:07:10"
	discUUID   = "8a9b0c1d-2e3f-4051-8697-a8b9cadbecfd"
	discMaker  = "Rackmaker Inc"
	discProd   = "RM-2000 Node"
	discSerial = "SN-4471-A"
	discAsset  = "ASSET-0099"
)

// TestDiscoverAssignInstall is issue 17's real-firmware acceptance: a
// SeaBIOS+iPXE VM whose MAC kickstand does not know gets the discovery
// script, reports its MAC, UUID, manufacturer, product, serial and asset
// tag (set with QEMU's -smbios), and waits. `kickstand host add
// --from-discovered` makes it a host, and the same VM, without a reboot (one BIOS run, QEMU
// with -no-reboot), installs through kickstand and reports built.
func TestDiscoverAssignInstall(t *testing.T) {
	t.Parallel()
	vmtest.NeedVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2edisc")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, data := discoveryConfig(t)
	k := startKickstand(t, ctx, lab, cfg, data)
	needCommands(t, k.bin, "discovered")

	vm, err := vmtest.StartVM(ctx, lab, vmtest.VMOptions{Name: "disc1", Firmware: vmtest.BIOS, MAC: discMAC, Timeout: 4 * time.Minute,
		ExtraArgs: []string{
			"-smbios", "type=1,manufacturer=" + discMaker + ",product=" + discProd + ",serial=" + discSerial + ",uuid=" + discUUID,
			"-smbios", "type=3,asset=" + discAsset,
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	m := k.waitDiscovered(t, discMAC, 90*time.Second)
	if m == nil {
		t.Fatalf("the VM never appeared in discovered list\nserial:\n%s\nkickstand:\n%s", tail(vm.Serial(), 4000), tail(k.Log(), 4000))
	}
	want := store.Discovered{MAC: discMAC, Proof: "lease", UUID: discUUID, Manufacturer: discMaker, Product: discProd, Serial: discSerial, Asset: discAsset, Platform: "pcbios"}
	got := store.Discovered{MAC: m.MAC, Proof: m.Proof, UUID: m.UUID, Manufacturer: m.Manufacturer, Product: m.Product, Serial: m.Serial, Asset: m.Asset, Platform: m.Platform}
	if got != want {
		t.Errorf("discovered machine = %+v\nwant %+v", got, want)
	}
	if m.Host != "" || m.Chip == "" || m.BuildArch == "" || !strings.HasPrefix(m.Addr, "192.0.2.") {
		t.Errorf("discovered machine: host %q, chip %q, buildarch %q, addr %q", m.Host, m.Chip, m.BuildArch, m.Addr)
	}
	// It waits: several polls, no host, nothing booted.
	time.Sleep(6 * time.Second)
	if ms := k.discovered(t); len(ms) != 1 || ms[0].Host != "" {
		t.Fatalf("after waiting: %+v", ms)
	}
	if out, err := exec.Command(k.bin, "host", "show", "--config", cfg, "--data", data, "rack-a1").CombinedOutput(); err == nil {
		t.Fatalf("a report created a host:\n%s", out)
	}
	if vm.Exited() {
		t.Fatalf("the VM stopped waiting:\n%s", tail(vm.Serial(), 4000))
	}

	assigned := time.Now()
	out, err := exec.Command(k.bin, "host", "add", "--from-discovered", discMAC, "--name", "rack-a1", "--profile", "test-bios", "--config", cfg, "--data", data).CombinedOutput()
	if err != nil {
		t.Fatalf("host add --from-discovered: %v\n%s", err, out)
	}
	res := vm.Wait()
	for _, re := range []*regexp.Regexp{ksOK, postOK, done} {
		if res.Find(re) == "" {
			t.Fatalf("serial console lacks %s:\n%s", re, tailOf(res))
		}
	}
	if n := strings.Count(res.Serial, "SeaBIOS (version"); n > 1 {
		t.Errorf("the VM rebooted (%d BIOS runs)", n)
	}
	tl := k.waitTimeline(t, "rack-a1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "discovery", "(new) -> install (by cli)", "http.discovery", "http.kernel", "http.kickstart")
	builtThenLocal(t, tl)
	// Between the assignment and the kernel, no DHCP: the firmware did
	// not start over (the installer's own DHCP comes after the kernel).
	if before, _, ok := strings.Cut(tl, "http.kernel"); !ok || strings.Contains(before, "dhcp.") {
		t.Errorf("the VM asked DHCP again between assignment and kernel (a reboot?):\n%s", tl)
	}
	t.Logf("assigned to built in %s; timeline:\n%s", time.Since(assigned).Round(time.Second), tl)
	if ms := k.discovered(t); len(ms) != 1 || ms[0].Host != "rack-a1" {
		t.Errorf("discovered list after assignment: %+v", ms)
	}
}

// TestDiscoverUEFIByRule: an unknown OVMF machine gets ipxe.efi from
// kickstand's DHCP and TFTP, reports itself as platform efi, and a
// discovery rule on its serial assigns it at once: it installs to built
// with no operator and no reboot.
func TestDiscoverUEFIByRule(t *testing.T) {
	t.Parallel()
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFCode, "/usr/lib/ipxe/ipxe.efi")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2edrule")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, data := labConfig(t, func(s string) string {
		return s + `
menu:
  unknown: discover
discovery:
  poll: 2s
  rules:
    - {serial: "AUTO-UEFI-1", name: "uefi-{serial}", profile: test-uefi}
`
	})
	k := startKickstand(t, ctx, lab, cfg, data)
	const mac = "52:54:00:00:07:20"
	res, err := vmtest.BootVM(ctx, lab, vmtest.VMOptions{Name: "drule", Firmware: vmtest.UEFI, MAC: mac, NoIPv6PXE: true, Timeout: 4 * time.Minute,
		ExtraArgs: []string{"-smbios", "type=1,manufacturer=Rackmaker Inc,product=RM-3000,serial=AUTO-UEFI-1"}})
	if err != nil {
		t.Fatalf("VM: %v\n%s", err, tailOf(res))
	}
	for _, re := range []*regexp.Regexp{ksOK, postOK, done} {
		if res.Find(re) == "" {
			t.Fatalf("serial console lacks %s:\n%s", re, tailOf(res))
		}
	}
	tl := k.waitTimeline(t, "uefi-auto-uefi-1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "discovery", "(new) -> install (by discovery rule 0)", "http.kernel", "http.kickstart")
	builtThenLocal(t, tl)
	ms := k.discovered(t)
	if len(ms) != 1 || ms[0].MAC != mac || ms[0].Platform != "efi" || ms[0].BuildArch != "x86_64" || ms[0].Host != "uefi-auto-uefi-1" || ms[0].Serial != "AUTO-UEFI-1" {
		t.Errorf("discovered list: %+v", ms)
	}
	t.Logf("UEFI discovery by rule took %s; timeline:\n%s", res.Elapsed, tl)
}

// builtThenLocal checks the end of an install: the built callback and the
// move to local. Their order in the timeline is not fixed: the callback's
// request event is written by the recorder in batches, the state change
// by the lifecycle at once.
func builtThenLocal(t *testing.T, tl string) {
	t.Helper()
	for _, want := range []string{"callback.built", "install -> local"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl)
		}
	}
}
