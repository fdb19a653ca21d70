package e2e

import (
	"bytes"
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

// The kickstart server is off-link, as in seed 000 (2401:beef:20::20 seen
// from 2401:beef:11::/64): reaching it needs the default route that only a
// router advertisement provides.
const v6raceConfig = `
server:
  http: "[::]:8080"
  address_v6: "2001:db8:20::20"
  data_dir: %s
  templates: %s
  route_wait: 30s
distros:
  - name: test-installer
    release: rhel9
    arch: x86_64
    tree: %s
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: fixed
    distro: test-installer
    kickstart: test-installer.ks
    kernel_args: console=ttyS0 net.ifnames=0 panic=5
  - name: unfixed
    distro: test-installer
    kickstart: test-installer.ks
    kernel_args: console=ttyS0 net.ifnames=0 panic=5
    fixes: "off"
hosts:
  - name: v6fixed
    macs: ["52:54:00:00:06:01"]
    ipv6: "2001:db8::10/64"
    profile: fixed
    netboot: install
  - name: v6unfixed
    macs: ["52:54:00:00:06:02"]
    ipv6: "2001:db8::11/64"
    profile: unfixed
    netboot: install
`

const radvdConf = `interface %s {
    AdvSendAdvert on;
    MinRtrAdvInterval 3;
    MaxRtrAdvInterval 4;
    AdvDefaultLifetime 600;
    prefix 2001:db8::/64 { AdvOnLink on; AdvAutonomous off; };
};
`

// TestSeed000Race1 reproduces seed 000's race #1 and shows kickstand's fix
// beating it. The VM boots kickstand's rendered command line (static
// ip=[2001:db8::1x]:::64:::none, no gateway) with the initrds kickstand
// serves; radvd starts about 8 s after the VM's link comes up. Without the
// fix dracut's fetch fails with "Network is unreachable" (expected); with
// kickstand's overlay initrd the fetch waits for the route and succeeds.
func TestSeed000Race1(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, "radvd", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	kernel, _, err := vmtest.Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r := newRaceLab(t, ctx, "e2e6", v6raceConfig, kernel, regexp.MustCompile(`KSTEST: net link iface=\S+ up`))
	boot := func(host, mac string) *vmtest.VMResult { return r.boot(t, ctx, host, mac) }

	unfixed := boot("v6unfixed", "52:54:00:00:06:02")
	if unfixed.Find(regexp.MustCompile(`KSTEST: ks-fetch failed .*unreachable`)) == "" {
		t.Fatalf("without the fix the fetch should fail with Network is unreachable (seed 000 race #1):\n%s", tailOf(unfixed))
	}
	t.Logf("without the fix: %s", unfixed.Find(regexp.MustCompile(`KSTEST: ks-fetch`)))

	fixed := boot("v6fixed", "52:54:00:00:06:01")
	if fixed.Find(regexp.MustCompile(`KSTEST: ks-fetch ok`)) == "" {
		t.Fatalf("with kickstand's overlay the fetch should succeed:\n%s", tailOf(fixed))
	}
	if fixed.Find(regexp.MustCompile(`kickstand: IPv6 default route after`)) == "" {
		t.Errorf("the overlay hook did not report waiting for the route:\n%s", tailOf(fixed))
	}
	t.Logf("with the fix: %s / %s", fixed.Find(regexp.MustCompile(`kickstand: IPv6 default route`)), fixed.Find(regexp.MustCompile(`KSTEST: ks-fetch`)))
}

// raceLab boots a host of a seed-000 race config with the command line and
// initrds kickstand renders for it, and starts the router late: some
// seconds after the VM's console shows linkUp (its address is configured).
type raceLab struct {
	lab            *vmtest.Lab
	k              *kickstand
	cfg, data, dir string
	radvdConf      string
	kernel         string
	linkUp         *regexp.Regexp
	timeout        time.Duration // default 3 minutes
	extraInitrds   [][]byte      // appended after kickstand's initrds
}

// newRaceLab makes an IPv6-only lab whose kickstand (config: v6raceConfig's
// placeholders, the tree being kernel's directory) sits off-link, at
// 2001:db8:20::20 behind the srv namespace as router, as in seed 000.
func newRaceLab(t *testing.T, ctx context.Context, name, config, kernel string, linkUp *regexp.Regexp) *raceLab {
	t.Helper()
	lab, err := vmtest.NewLab(ctx, name, vmtest.IPv6Only())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	// kickstand's address sits on another prefix, reached through the
	// router (the srv namespace) that radvd announces.
	for _, argv := range [][]string{
		{"ip", "addr", "add", "2001:db8:20::20/128", "dev", "lo"},
		{"sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"},
	} {
		if err := lab.Run(ctx, lab.Srv, argv...); err != nil {
			t.Fatal(err)
		}
	}
	root, _ := vmtest.RepoRoot()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfg := filepath.Join(dir, "kickstand.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(config, data, filepath.Join(root, "examples", "templates"), filepath.Dir(kernel))), 0o644)
	k := startKickstand(t, ctx, lab, cfg, data)
	radvdConfPath := filepath.Join(dir, "radvd.conf")
	os.WriteFile(radvdConfPath, []byte(fmt.Sprintf(radvdConf, lab.Bridge)), 0o644)
	return &raceLab{lab: lab, k: k, cfg: cfg, data: data, dir: dir, radvdConf: radvdConfPath, kernel: kernel, linkUp: linkUp}
}

func (r *raceLab) boot(t *testing.T, ctx context.Context, host, mac string) *vmtest.VMResult {
	t.Helper()
	lab, k, cfg, data := r.lab, r.k, r.cfg, r.data
	cmdline, err := runOut(k.bin, "render", "cmdline", "--config", cfg, "--data", data, host)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(cmdline, ":::64:::none") {
		t.Fatalf("%s: not seed 000's gateway-less ip=: %s", host, cmdline)
	}
	// Fetch every initrd the iPXE script names, from kickstand, and
	// concatenate them as iPXE would hand them to the kernel.
	script, err := runOut(k.bin, "render", "ipxe", "--config", cfg, "--data", data, host)
	if err != nil {
		t.Fatal(err)
	}
	var initrd bytes.Buffer
	for _, m := range regexp.MustCompile(`(?m)^initrd --name \S+ (\S+)$`).FindAllStringSubmatch(script, -1) {
		b, err := lab.Output(ctx, lab.Srv, "curl", "-gfsS", m[1])
		if err != nil {
			t.Fatalf("fetch %s: %v", m[1], err)
		}
		initrd.WriteString(b)
		for initrd.Len()%4 != 0 {
			initrd.WriteByte(0)
		}
	}
	for _, b := range r.extraInitrds {
		initrd.Write(b)
		for initrd.Len()%4 != 0 {
			initrd.WriteByte(0)
		}
	}
	rd := filepath.Join(r.dir, host+".initrd")
	os.WriteFile(rd, initrd.Bytes(), 0o644)
	timeout := r.timeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	vm, err := vmtest.StartVM(ctx, lab, vmtest.VMOptions{Name: host, MAC: mac, Kernel: r.kernel, Initrd: rd, Append: strings.TrimSpace(cmdline), Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	if _, err := vm.WaitFor(ctx, r.linkUp); err != nil {
		t.Fatalf("%s: link never came up: %v\n%s", host, err, vm.Serial())
	}
	time.Sleep(8 * time.Second) // the router comes up late
	radvd := lab.Cmd(ctx, lab.Srv, "radvd", "--nodaemon", "-C", r.radvdConf, "-p", filepath.Join(r.dir, host+".radvd.pid"), "-m", "stderr")
	if err := radvd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { radvd.Process.Kill(); radvd.Wait() }()
	return vm.Wait()
}

func runOut(bin string, args ...string) (string, error) {
	out, err := execCommand(bin, args...).Output()
	return string(out), err
}
