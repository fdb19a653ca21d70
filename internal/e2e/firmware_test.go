package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/diagnose"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// Issue 14's real-firmware chains: UEFI HTTP boot over IPv4 and IPv6,
// Secure Boot through shim, and arm64 UEFI, each from power-on to `built`
// through kickstand. The tests run in parallel: each has its own lab.

// fwLab is a lab with kickstand serving a config written for the test.
type fwLab struct {
	lab       *vmtest.Lab
	k         *kickstand
	cfg, data string
	dir       string
}

// newFWLab creates the lab and starts kickstand on config, a YAML text
// whose %[1]s is the data dir and %[2]s the templates dir.
func newFWLab(t *testing.T, ctx context.Context, name, config string, opts ...vmtest.LabOption) *fwLab {
	t.Helper()
	root, _ := vmtest.RepoRoot()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(config, data, filepath.Join(root, "examples", "templates"))), 0o644); err != nil {
		t.Fatal(err)
	}
	return labWith(t, ctx, name, cfg, data, opts...)
}

// labWith creates the lab for a config file already written.
func labWith(t *testing.T, ctx context.Context, name, cfg, data string, opts ...vmtest.LabOption) *fwLab {
	t.Helper()
	lab, err := vmtest.NewLab(ctx, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	return &fwLab{lab: lab, cfg: cfg, data: data, dir: t.TempDir()}
}

// timelineHas reports whether a host's timeline matches re, without
// failing the test (it runs off the test's goroutine).
func (l *fwLab) timelineHas(host string, re *regexp.Regexp) bool {
	out, err := exec.Command(l.k.bin, "host", "timeline", "--config", l.cfg, "--data", l.data, host).CombinedOutput()
	return err == nil && re.Match(out)
}

func (l *fwLab) start(t *testing.T, ctx context.Context) {
	t.Helper()
	l.k = startKickstand(t, ctx, l.lab, l.cfg, l.data)
}

// capture records the lab bridge's DHCP traffic; the returned function
// stops it (once) and decodes it with tcpdump -r and the given options.
func (l *fwLab) capture(t *testing.T, ctx context.Context) func(args ...string) string {
	t.Helper()
	pcap := filepath.Join(l.dir, "dhcp.pcap")
	cmd := l.lab.Cmd(ctx, l.lab.Srv, "tcpdump", "-i", l.lab.Bridge, "-n", "-U", "-w", pcap, "udp port 67 or udp port 68 or udp port 546 or udp port 547")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // let tcpdump open the interface
	var once sync.Once
	return func(args ...string) string {
		once.Do(func() {
			cmd.Process.Signal(syscall.SIGINT)
			cmd.Wait()
		})
		out, err := exec.Command("tcpdump", append([]string{"-r", pcap, "-n"}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tcpdump -r: %v\n%s", err, out)
		}
		return string(out)
	}
}

// events reads a host's timeline as the store keeps it.
func (l *fwLab) events(t *testing.T, host string) []store.Event {
	t.Helper()
	out, err := exec.Command(l.k.bin, "host", "timeline", "--output", "json", "--config", l.cfg, "--data", l.data, host).Output()
	if err != nil {
		t.Fatalf("host timeline --output json: %v", err)
	}
	var tl struct {
		Events []store.Event `json:"events"`
	}
	if err := json.Unmarshal(out, &tl); err != nil {
		t.Fatalf("timeline json: %v\n%s", err, out)
	}
	return tl.Events
}

// radvd starts a router advertising 2001:db8::/64 on the lab's bridge.
func (l *fwLab) radvd(t *testing.T, ctx context.Context) {
	t.Helper()
	conf := filepath.Join(l.dir, "radvd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`interface %s {
    AdvSendAdvert on; AdvManagedFlag on; AdvOtherConfigFlag on;
    MinRtrAdvInterval 3; MaxRtrAdvInterval 4;
    prefix 2001:db8::/64 { AdvOnLink on; AdvAutonomous off; };
};
`, l.lab.Bridge)), 0o644)
	if err := l.lab.Run(ctx, l.lab.Srv, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"); err != nil {
		t.Fatal(err)
	}
	cmd := l.lab.Cmd(ctx, l.lab.Srv, "radvd", "--nodaemon", "-C", conf, "-p", filepath.Join(l.dir, "radvd.pid"), "-m", "stderr")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// installed checks the serial console and the timeline of a boot that
// should end in `built`, and returns the timeline.
func (l *fwLab) installed(t *testing.T, res *vmtest.VMResult, err error, host string, order ...string) string {
	t.Helper()
	if err != nil {
		t.Fatalf("VM: %v\n%s\ntimeline:\n%s", err, tailOf(res), l.k.timeline(t, host))
	}
	for _, re := range []*regexp.Regexp{ksOK, postOK, done} {
		if res.Find(re) == "" {
			t.Fatalf("serial console lacks %s:\n%s\ntimeline:\n%s", re, tailOf(res), l.k.timeline(t, host))
		}
	}
	tl := l.k.waitTimeline(t, host, regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, order...)
	t.Logf("%s: power-on to poweroff in %s; timeline:\n%s", host, res.Elapsed.Round(time.Second), tl)
	return tl
}

// TestUEFIHTTPv4Install: OVMF with PXE switched off does UEFI HTTP boot.
// kickstand's DHCPv4 reply echoes option 60 "HTTPClient" and names
// http://192.0.2.1:8080/ipxe.efi; iPXE then takes its script, the kernel
// and the kickstart over HTTP.
func TestUEFIHTTPv4Install(t *testing.T) {
	t.Parallel()
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFCode, "/usr/lib/ipxe/ipxe.efi", "tcpdump")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cfg, data := labConfig(t, nil)
	l := labWith(t, ctx, "fwh4", cfg, data)
	stop := l.capture(t, ctx)
	l.start(t, ctx)

	res, err := vmtest.BootVM(ctx, l.lab, vmtest.VMOptions{Name: "uefi1-http4", Firmware: vmtest.UEFI, MAC: vmtest.DefaultUEFIMAC, NoIPv4PXE: true, NoIPv6PXE: true, Timeout: 3 * time.Minute})
	tl := l.installed(t, res, err, "uefi1", "dhcp.ack", "http.loader", "http.script", "http.kernel", "http.kickstart", "callback.built")
	if !strings.Contains(tl, "boot http://192.0.2.1:8080/ipxe.efi") {
		t.Errorf("the DHCP answer did not name ipxe.efi over HTTP:\n%s", tl)
	}
	dump := stop("-vvv")
	if !regexp.MustCompile(`(?s)Vendor-Class.{0,40}"HTTPClient`).MatchString(dump) {
		t.Errorf("no DHCPv4 packet carried option 60 HTTPClient:\n%s", lastN(dump, 4000))
	}
}

// TestUEFIHTTPv6Install: on an IPv6-only link with radvd, OVMF's HTTP boot
// over IPv6 asks kickstand's DHCPv6, whose reply carries option 16
// (HTTPClient) and option 59 http://[2001:db8::1]:8080/ipxe.efi; iPXE,
// the kernel and the kickstart then all come over IPv6.
func TestUEFIHTTPv6Install(t *testing.T) {
	t.Parallel()
	vmtest.NeedVM(t)
	vmtest.Need(t, "radvd", "tcpdump", vmtest.OVMFCode, "/usr/lib/ipxe/ipxe.efi")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	kernel, _, err := vmtest.Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(v6bootConfig, "    loader: grub\n", "    loader: ipxe\n", 1)
	conf = strings.Replace(conf, "  data_dir: %s\n  templates: %s\n", "  data_dir: %[1]s\n  templates: %[2]s\n", 1)
	conf = strings.Replace(conf, "    tree: %s\n", "    tree: "+filepath.Dir(kernel)+"\n", 1)
	l := newFWLab(t, ctx, "fwh6", conf, vmtest.IPv6Only())
	l.radvd(t, ctx)
	stop := l.capture(t, ctx)
	l.start(t, ctx)

	// The slowest chain: OVMF tries HTTP boot over IPv4 first and waits out
	// its DHCPv4, and iPXE does the same before DHCPv6 (114 s alone under
	// TCG, near 3 min on a loaded machine), so it gets a minute more.
	res, err := vmtest.BootVM(ctx, l.lab, vmtest.VMOptions{Name: "uefi1-http6", Firmware: vmtest.UEFI, MAC: vmtest.DefaultUEFIMAC, NoIPv4PXE: true, NoIPv6PXE: true, Timeout: 4 * time.Minute})
	tl := l.installed(t, res, err, "uefi1", "dhcp.", "http://[2001:db8::1]:8080/ipxe.efi", "http.loader", "http.script", "http.kernel", "http.kickstart", "callback.built")
	if res.Find(regexp.MustCompile(`KSTEST: ks-fetch ok .*url=http://\[2001:db8::1\]`)) == "" {
		t.Errorf("the kickstart was not fetched over IPv6:\n%s", tailOf(res))
	}
	if strings.Contains(tl, "192.0.2.") {
		t.Errorf("IPv4 in an IPv6-only install:\n%s", tl)
	}
	// tcpdump does not decode DHCPv6 options 16 and 59: read the server's
	// replies as text, where only those options carry these strings.
	dump := stop("-A", "udp src port 547")
	for _, want := range []string{"HTTPClient", "http://[2001:db8::1]:8080/ipxe.efi"} {
		if !strings.Contains(dump, want) {
			t.Errorf("no DHCPv6 reply carried %s:\n%s", want, lastN(dump, 4000))
		}
	}
}

// secureBootConfig has the test installer twice: as itself (Debian's
// signed kernel, served with Debian's shim and signed GRUB) and as a
// distro whose GRUB is the unsigned netboot build.
const secureBootConfig = `
server:
  http: ":8080"
  address_v4: 192.0.2.1
  data_dir: %[1]s
  templates: %[2]s
  loaders: [%[3]s]
dhcp:
  enabled: true
  interfaces: [ksbr0]
  subnets: [{subnet: 192.0.2.0/24, pool: 192.0.2.100-192.0.2.199, routers: [192.0.2.1]}]
tftp:
  enabled: true
distros:
  - name: signed
    release: rhel9
    arch: x86_64
    tree: %[4]s
    kernel: vmlinuz
    initrd: [initrd.img]
  - name: unsigned-grub
    release: rhel9
    arch: x86_64
    tree: %[5]s
    kernel: vmlinuz
    initrd: [initrd.img]
    grub: grubnetx64-unsigned.efi
profiles:
  - name: sb
    distro: signed
    kickstart: test-installer.ks
    kernel_args: console=ttyS0 net.ifnames=0 panic=5
    secure_boot: true
  - name: sb-unsigned
    distro: unsigned-grub
    kickstart: test-installer.ks
    kernel_args: console=ttyS0 net.ifnames=0 panic=5
    loader: shim
hosts:
  - name: sb1
    macs: ["52:54:00:00:0b:10"]
    ipv4: 192.0.2.31/24
    gateway4: 192.0.2.1
    interface: eth0
    profile: sb
    netboot: install
  - name: sb2
    macs: ["52:54:00:00:0b:11"]
    ipv4: 192.0.2.32/24
    gateway4: 192.0.2.1
    interface: eth0
    profile: sb-unsigned
    netboot: install
`

const unsignedGRUB = "/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi"

func secureBootLab(t *testing.T, ctx context.Context, name string) *fwLab {
	t.Helper()
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFSecBootCode, vmtest.OVMFMSVars, unsignedGRUB)
	kernel, initrd, err := vmtest.Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loaders, err := vmtest.Loaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The unsigned distro's tree: the same kernel and initrd, and the
	// unsigned netboot GRUB from grub-efi-amd64-bin.
	tree := t.TempDir()
	for src, dst := range map[string]string{kernel: "vmlinuz", initrd: "initrd.img", unsignedGRUB: "grubnetx64-unsigned.efi"} {
		if err := copyTo(src, filepath.Join(tree, dst)); err != nil {
			t.Fatal(err)
		}
	}
	conf := strings.NewReplacer("%[3]s", loaders, "%[4]s", filepath.Dir(kernel), "%[5]s", tree).Replace(secureBootConfig)
	l := newFWLab(t, ctx, name, conf)
	l.start(t, ctx)
	return l
}

// TestSecureBootShimInstall: OVMF with Secure Boot enforced (secboot code,
// Microsoft's keys) PXE-boots over IPv4 through kickstand: the BOOTP file
// header names the distro's shim directory, Microsoft-signed shim loads
// Debian's signed GRUB beside it, GRUB's config boots Debian's signed
// kernel, which reports Secure Boot on, and the installer reports built.
func TestSecureBootShimInstall(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l := secureBootLab(t, ctx, "fwsb")
	res, err := vmtest.BootVM(ctx, l.lab, vmtest.VMOptions{Name: "sb1", Firmware: vmtest.UEFISecureBoot, MAC: "52:54:00:00:0b:10", NoIPv6PXE: true, Timeout: 3 * time.Minute})
	tl := l.installed(t, res, err, "sb1", "dhcp.ack", "kickstand/efi/signed/shimx64.efi", "kickstand/efi/signed/grubx64.efi", "grub.cfg", "vmlinuz", "initrd.img", "http.kickstart", "callback.built")
	if res.Find(regexp.MustCompile(`secureboot: Secure boot enabled`)) == "" {
		t.Errorf("the kernel did not report Secure Boot on:\n%s", tailOf(res))
	}
	if !strings.Contains(tl, "boot kickstand/efi/signed/shimx64.efi") {
		t.Errorf("DHCP did not hand out the distro's shim:\n%s", tl)
	}
}

// TestSecureBootUnsignedGRUBRefused: the same firmware and shim, but the
// distro's GRUB is unsigned. shim fetches it and refuses it; nothing is
// asked for after, and the timeline's diagnosis says so.
func TestSecureBootUnsignedGRUBRefused(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	l := secureBootLab(t, ctx, "fwsbx")
	vm, err := vmtest.StartVM(ctx, l.lab, vmtest.VMOptions{Name: "sb2", Firmware: vmtest.UEFISecureBoot, MAC: "52:54:00:00:0b:11", NoIPv6PXE: true, Timeout: 3 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	// shim draws its error as a dialog: the words come between escape codes
	// and the line never ends, so read the console as a person would.
	const refusal = "Verification failed: (0x1A) Security Violation"
	for deadline := time.Now().Add(150 * time.Second); !strings.Contains(plainText(vm.Serial()), refusal); time.Sleep(time.Second) {
		if time.Now().After(deadline) {
			t.Fatalf("shim did not refuse the unsigned GRUB:\n%s\ntimeline:\n%s", lastN(plainText(vm.Serial()), 3000), l.k.timeline(t, "sb2"))
		}
	}
	t.Logf("console: %s", refusal)
	time.Sleep(5 * time.Second) // would anything follow?
	vm.Kill()
	tl := l.k.timeline(t, "sb2")
	inOrder(t, tl, "dhcp.ack", "kickstand/efi/unsigned-grub/shimx64.efi", "kickstand/efi/unsigned-grub/grubx64.efi")
	after := tl[strings.LastIndex(tl, "kickstand/efi/unsigned-grub/grubx64.efi"):]
	for _, never := range []string{"grub.cfg", "vmlinuz", "http.kickstart"} {
		if strings.Contains(after, never) {
			t.Errorf("%s was fetched after the unsigned GRUB:\n%s", never, tl)
		}
	}
	// The diagnosis once the stall window has passed.
	evs := l.events(t, "sb2")
	d := diagnose.Diagnose(evs, evs[len(evs)-1].At.Add(2*time.Minute), diagnose.Options{})
	if d.Stage != diagnose.StageLoader || !d.Stalled || !strings.Contains(d.Cause, "Secure Boot") || !strings.Contains(d.Cause, "grubx64.efi") || !strings.Contains(d.Hint, "signed by the same vendor") {
		t.Errorf("diagnosis = %+v\ntimeline:\n%s", d, tl)
	}
	t.Logf("diagnosis: %s\nhint: %s\ntimeline:\n%s", d.Cause, d.Hint, tl)
}

// arm64Config: an aarch64 distro (Debian's arm64 kernel and the test
// installer built for arm64) with the default loader, which for arm64
// firmware is GRUB; and two hosts whose distro is for the other CPU.
const arm64Config = `
server:
  http: ":8080"
  address_v4: 192.0.2.1
  data_dir: %[1]s
  templates: %[2]s
  loaders: [%[3]s]
dhcp:
  enabled: true
  interfaces: [ksbr0]
  subnets: [{subnet: 192.0.2.0/24, pool: 192.0.2.100-192.0.2.199, routers: [192.0.2.1]}]
tftp:
  enabled: true
distros:
  - name: arm-installer
    release: rhel9
    arch: aarch64
    tree: %[4]s
    kernel: vmlinuz
    initrd: [initrd.img]
  - name: x86-installer
    release: rhel9
    arch: x86_64
    tree: %[5]s
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: arm
    distro: arm-installer
    kickstart: test-installer.ks
    kernel_args: console=ttyAMA0 net.ifnames=0 panic=5
  - name: x86
    distro: x86-installer
    kickstart: test-installer.ks
    kernel_args: console=ttyS0 net.ifnames=0 panic=5
hosts:
  - name: arm1
    macs: ["52:54:00:00:0a:10"]
    ipv4: 192.0.2.41/24
    gateway4: 192.0.2.1
    interface: eth0
    profile: arm
    netboot: install
  - name: arm-wrong
    macs: ["52:54:00:00:0a:11"]
    ipv4: 192.0.2.42/24
    profile: x86
    netboot: install
  - name: x86-wrong
    macs: ["52:54:00:00:0a:12"]
    ipv4: 192.0.2.43/24
    profile: arm
    netboot: install
`

// TestARM64UEFIInstall: an aarch64 guest (AAVMF, -M virt, TCG) PXE-boots
// over IPv4: arch 11 gets GRUB grubaa64.efi (Debian's grubnetaa64.efi; there
// is no arm64 iPXE), GRUB's config boots Debian's arm64 kernel with the
// test installer built for arm64, which fetches its kickstart and reports
// built. Meanwhile an arm64 machine whose profile has an x86_64 distro, and
// an x86_64 UEFI machine whose profile has the aarch64 one, are refused,
// and their timelines say why.
func TestARM64UEFIInstall(t *testing.T) {
	t.Parallel()
	vmtest.NeedVM(t)
	vmtest.Need(t, "qemu-system-aarch64", vmtest.AAVMFCode, vmtest.AAVMFVars, vmtest.OVMFCode)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	armKernel, _, err := vmtest.InstallerFor(ctx, "arm64")
	if err != nil {
		t.Fatal(err)
	}
	x86Kernel, _, err := vmtest.Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loaders, err := vmtest.Loaders(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.NewReplacer("%[3]s", loaders, "%[4]s", filepath.Dir(armKernel), "%[5]s", filepath.Dir(x86Kernel)).Replace(arm64Config)
	l := newFWLab(t, ctx, "fwa64", conf)
	l.start(t, ctx)

	// The two wrong-CPU machines only need to reach DHCP.
	refused := map[string]*regexp.Regexp{
		"arm-wrong": regexp.MustCompile(`refused: the machine is aarch64 firmware \(arch 11\) but distro x86-installer is x86_64`),
		"x86-wrong": regexp.MustCompile(`refused: the machine is x86_64 firmware \(arch 7\) but distro arm-installer is aarch64`),
	}
	for host, opts := range map[string]vmtest.VMOptions{
		"arm-wrong": {Name: "arm-wrong", Firmware: vmtest.ARM64, MAC: "52:54:00:00:0a:11", NoIPv6PXE: true, Timeout: 2 * time.Minute},
		"x86-wrong": {Name: "x86-wrong", Firmware: vmtest.UEFI, MAC: "52:54:00:00:0a:12", NoIPv6PXE: true, Timeout: 2 * time.Minute},
	} {
		vm, err := vmtest.StartVM(ctx, l.lab, opts)
		if err != nil {
			t.Fatal(err)
		}
		defer vm.Kill()
		go func(re *regexp.Regexp, vm *vmtest.VM) {
			for deadline := time.Now().Add(100 * time.Second); time.Now().Before(deadline) && !l.timelineHas(opts.Name, re); {
				time.Sleep(time.Second)
			}
			vm.Kill()
		}(refused[host], vm)
	}

	res, err := vmtest.BootVM(ctx, l.lab, vmtest.VMOptions{Name: "arm1", Firmware: vmtest.ARM64, MAC: "52:54:00:00:0a:10", NoIPv6PXE: true, Timeout: 3 * time.Minute})
	tl := l.installed(t, res, err, "arm1", "dhcp.ack", "grubaa64.efi", "grub.cfg", "distros/arm-installer/vmlinuz", "http.kickstart", "callback.built")
	if !strings.Contains(tl, "boot grubaa64.efi") {
		t.Errorf("arm64 firmware was not handed GRUB:\n%s", tl)
	}
	if res.Find(regexp.MustCompile(`KSTEST: boot kernel=\S+-arm64`)) == "" {
		t.Errorf("not the arm64 kernel:\n%s", tailOf(res))
	}
	for host, re := range refused {
		tl := l.k.waitTimeline(t, host, re, 60*time.Second)
		if !re.MatchString(tl) {
			t.Errorf("%s: no refusal in the timeline:\n%s", host, tl)
		}
		if strings.Contains(tl, "tftp.file") || strings.Contains(tl, "http.") {
			t.Errorf("%s: a refused machine fetched something:\n%s", host, tl)
		}
	}
}

func copyTo(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

var ansi = regexp.MustCompile(`\x1b\[[0-9;=?]*[A-Za-z]`)

// plainText is a serial console without its escape codes and with runs of
// blanks squeezed, as a person would read it.
func plainText(s string) string {
	return regexp.MustCompile(`[ \t]+`).ReplaceAllString(ansi.ReplaceAllString(s, ""), " ")
}

func lastN(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
