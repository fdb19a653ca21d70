package e2e

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestTestBoot is issue 7's test-boot acceptance: `kickstand test-boot`
// passes for the lab's BIOS host and its UEFI host, and fails with a clear
// verdict when the distro's kernel path is wrong. The three boots run in
// parallel, each in the private namespace test-boot makes for itself.
//
// The real store has bios1 already built (state local): test-boot must
// pass anyway, since its sandbox serves a snapshot of the host in install
// state, and leave bios1 local with only the verdict added to its timeline.
// (The wrong-kernel boot has its own config and store.)
//
// The broken config points the distro's kernel at a file that does not
// exist. `kickstand serve` refuses such a config, but test-boot's sandbox
// serves it without the file check, on purpose: the point of a test boot
// is to show what the host would get (a 404 for its kernel) rather than
// refuse to try. The sandbox starts no real server the test must edit
// files under, so the test needs no "remove the file after serve starts"
// trick.
func TestTestBoot(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFCode, "/usr/lib/ipxe/ipxe.efi")
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	needCommands(t, bin, "test-boot")
	cfg, data := labConfig(t, nil)
	badCfg, badData := labConfig(t, func(s string) string {
		return strings.Replace(s, "kernel: vmlinuz\n", "kernel: vmlinuz-missing\n", 1)
	})
	if out, err := exec.Command(bin, "host", "set-state", "--config", cfg, "--data", data, "bios1", "local").CombinedOutput(); err != nil {
		t.Fatalf("set-state: %v\n%s", err, out)
	}
	type run struct {
		cfg, data, host, firmware string
		out                       string
		rc                        int
	}
	runs := []*run{
		{cfg: cfg, data: data, host: "bios1", firmware: "bios"},
		{cfg: cfg, data: data, host: "uefi1", firmware: "uefi"},
		{cfg: badCfg, data: badData, host: "bios1", firmware: "bios"},
	}
	// Concurrently, not with t.Parallel: -parallel is GOMAXPROCS, 2 on the
	// build machines, and the wrong-kernel boot hardly loads the CPU.
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			start := time.Now()
			out, err := exec.CommandContext(ctx, bin, "test-boot", "--quiet", "--config", r.cfg, "--data", r.data, r.host,
				"--firmware", r.firmware, "--timeout", "3m", "--memory", "1024").CombinedOutput()
			r.out = string(out)
			var ee *exec.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee):
				r.rc = ee.ExitCode()
			default:
				r.rc = -1
				r.out += "\n" + err.Error()
			}
			t.Logf("test-boot %s --firmware %s (%s) took %s, exit status %d:\n%s", r.host, r.firmware, r.cfg, time.Since(start).Round(time.Second), r.rc, r.out)
		}()
	}
	wg.Wait()

	bios, uefi, bad := runs[0], runs[1], runs[2]
	if bios.rc != 0 || !strings.Contains(bios.out, "PASS: bios1 (bios firmware, IPv4): kickstart fetched, the install reported built") {
		t.Errorf("bios: want PASS (rc %d)", bios.rc)
	}
	inOrder(t, bios.out, "dhcp.ack", "http.script", "http.kernel", "http.initrd", "http.kickstart", "callback.built", "PASS")
	if uefi.rc != 0 || !strings.Contains(uefi.out, "PASS: uefi1 (uefi firmware, IPv4)") {
		t.Errorf("uefi: want PASS (rc %d)", uefi.rc)
	}
	inOrder(t, uefi.out, "dhcp.ack", "tftp.file", "http.script", "http.kernel", "http.kickstart", "callback.built", "PASS")
	if !strings.Contains(uefi.out, "ipxe.efi") {
		t.Errorf("uefi: OVMF did not load ipxe.efi")
	}
	if bad.rc != 1 {
		t.Errorf("wrong kernel: want exit status 1, got %d", bad.rc)
	}
	for _, want := range []string{
		"FAIL: bios1 (bios firmware, IPv4) stopped at stage config",
		"GET /distros/test-installer/vmlinuz-missing -> HTTP 404 (the kernel of distro test-installer: ",
		"vmlinuz-missing does not exist)",
		"note: `kickstand serve` would refuse this config",
		"hint: ",
	} {
		if !strings.Contains(bad.out, want) {
			t.Errorf("wrong kernel: output lacks %q", want)
		}
	}
	if strings.Contains(bad.out, "http.kickstart") {
		t.Error("wrong kernel: a boot without its kernel fetched the kickstart")
	}

	// The real store: bios1 stayed local and got the verdict, nothing else.
	show, err := exec.Command(bin, "host", "show", "--config", cfg, "--data", data, "bios1").CombinedOutput()
	if err != nil || !strings.Contains(string(show), `"state": "local"`) {
		t.Errorf("bios1's state changed: %v\n%s", err, show)
	}
	tl, err := exec.Command(bin, "host", "timeline", "--config", cfg, "--data", data, "bios1").CombinedOutput()
	if err != nil || !strings.Contains(string(tl), "testboot.pass") {
		t.Errorf("bios1's timeline lacks the verdict: %v\n%s", err, tl)
	}
	for _, leak := range []string{"dhcp.", "http.", "callback."} {
		if strings.Contains(string(tl), leak) {
			t.Errorf("the sandbox's %s events reached the real timeline:\n%s", leak, tl)
		}
	}
	// Every test boot removed its namespace.
	if ns, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil || strings.Contains(string(ns), "kstb-") {
		t.Errorf("namespace left behind: %v\n%s", err, ns)
	}
}
