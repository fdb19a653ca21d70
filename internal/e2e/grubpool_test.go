package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestUEFIGRUBPoolLease is the lifecycle issue's real-firmware case: OVMF
// PXEv4 with Debian's grubnetx64.efi for a host that has only a MAC in the
// inventory. kickstand leases it a pool address; GRUB then asks only for
// /grub/grub.cfg, and kickstand answers with the host's config because it
// leased that very address to the host's MAC. The install reports built.
func TestUEFIGRUBPoolLease(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFCode, "/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2egp", vmtest.NoIPv6())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, data := labConfig(t, func(s string) string {
		s = strings.Replace(s, "    ipv4: 192.0.2.11/24\n    gateway4: 192.0.2.1\n", "", 1)
		return strings.Replace(s, "  - name: test-uefi\n    distro: test-installer\n", "  - name: test-uefi\n    distro: test-installer\n    loader: grub\n", 1)
	})
	k := startKickstand(t, ctx, lab, cfg, data)
	res, err := vmtest.BootVM(ctx, lab, vmtest.VMOptions{Name: "uefi1-pool", Firmware: vmtest.UEFI, MAC: vmtest.DefaultUEFIMAC, NoIPv6PXE: true, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatalf("VM: %v\n%s\ntimeline:\n%s", err, tailOf(res), k.timeline(t, "uefi1"))
	}
	if res.Find(ksOK) == "" || res.Find(done) == "" {
		t.Fatalf("no kickstart over the pool lease:\n%s", tailOf(res))
	}
	tl := k.waitTimeline(t, "uefi1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "dhcp.ack", "grubx64.efi", "grub.cfg", "http.kickstart", "callback.built", "state")
	if !regexp.MustCompile(`dhcp\.ack .*192\.0\.2\.1\d\d`).MatchString(tl) {
		t.Errorf("the host did not boot from a pool lease:\n%s", tl)
	}
	t.Logf("UEFI GRUB install over a pool lease took %s; timeline:\n%s", res.Elapsed, tl)
}
