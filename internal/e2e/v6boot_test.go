package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// An IPv6-only network: no IPv4 address anywhere, radvd as the router,
// kickstand's DHCPv6 with a reservation, TFTP and HTTP over IPv6.
const v6bootConfig = `
server:
  http: "[::]:8080"
  address_v6: "2001:db8::1"
  data_dir: %s
  templates: %s
dhcp6:
  enabled: true
  interfaces: [ksbr0]
  subnets:
    - prefix: 2001:db8::/64
      dns: ["2001:db8::1"]
tftp:
  enabled: true
  listen: "[::]:69"
distros:
  - name: test-installer
    release: rhel9
    arch: x86_64
    tree: %s
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: uefi-grub
    distro: test-installer
    kickstart: test-installer.ks
    kernel_args: console=ttyS0 net.ifnames=0 panic=5
    loader: grub
hosts:
  - name: uefi1
    macs: ["52:54:00:00:01:10"]
    ipv6: "2001:db8::11/64"
    gateway6: "2001:db8::1"
    nameservers: ["2001:db8::1"]
    interface: eth0
    profile: uefi-grub
    netboot: install
`

// TestIPv6OnlyUEFIBoot is issue 4's IPv6-only e2e: OVMF's own PXE over
// IPv6 asks kickstand's DHCPv6, gets option 59 tftp://[2001:db8::1]/...,
// loads GRUB over TFTPv6, GRUB fetches its config and the real kernel over
// TFTPv6, the kernel comes up with the rendered ip=[...] line, and the test
// installer fetches its kickstart over IPv6 and reports built.
func TestIPv6OnlyUEFIBoot(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, "radvd", vmtest.OVMFCode)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2e6b", vmtest.IPv6Only())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	kernel, _, err := vmtest.Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := vmtest.RepoRoot()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "kickstand.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(v6bootConfig, data, filepath.Join(root, "examples", "templates"), filepath.Dir(kernel))), 0o644)
	radvdConfPath := filepath.Join(dir, "radvd.conf")
	// Managed flag: firmware does DHCPv6 regardless, but say so anyway.
	os.WriteFile(radvdConfPath, []byte(`interface ksbr0 {
    AdvSendAdvert on; AdvManagedFlag on; AdvOtherConfigFlag on;
    MinRtrAdvInterval 3; MaxRtrAdvInterval 4;
    prefix 2001:db8::/64 { AdvOnLink on; AdvAutonomous off; };
};
`), 0o644)
	if err := lab.Run(ctx, lab.Srv, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"); err != nil {
		t.Fatal(err)
	}
	radvd := lab.Cmd(ctx, lab.Srv, "radvd", "--nodaemon", "-C", radvdConfPath, "-p", filepath.Join(dir, "radvd.pid"), "-m", "stderr")
	if err := radvd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { radvd.Process.Kill(); radvd.Wait() })
	k := startKickstand(t, ctx, lab, cfg, data)

	res, err := vmtest.BootVM(ctx, lab, vmtest.VMOptions{Name: "uefi1-v6", Firmware: vmtest.UEFI, MAC: vmtest.DefaultUEFIMAC, NoIPv4PXE: true, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatalf("VM: %v\n%s\ntimeline:\n%s", err, tailOf(res), k.timeline(t, "uefi1"))
	}
	if res.Find(regexp.MustCompile(`KSTEST: ks-fetch ok .*url=http://\[2001:db8::1\]`)) == "" || res.Find(done) == "" {
		t.Fatalf("the kickstart was not fetched over IPv6:\n%s", tailOf(res))
	}
	if res.Find(regexp.MustCompile(`KSTEST: cmdline .*ip=\[2001:db8::11\]::\[2001:db8::1\]:64:uefi1:eth0:none`)) == "" {
		t.Errorf("the kernel did not get the rendered ip=[...] line:\n%s", tailOf(res))
	}
	tl := k.waitTimeline(t, "uefi1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "dhcp.", "tftp://[2001:db8::1]/grubx64.efi", "tftp.file", "http.kickstart", "callback.built")
	if strings.Contains(tl, "192.0.2.") {
		t.Errorf("IPv4 in an IPv6-only install:\n%s", tl)
	}
	t.Logf("IPv6-only UEFI boot took %s; timeline:\n%s", res.Elapsed, tl)
}
