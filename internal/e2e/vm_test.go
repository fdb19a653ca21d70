package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// vmTestKickstart is a physical server's kickstart (sda everywhere) for
// the test installer. Its %post prints the disk lines of the kickstart the
// guest actually received, so the console shows what the rewrite did.
const vmTestKickstart = `# {{ .host.name }}: a bare-metal kickstart reused for a VM.
text
url --url={{ .install.url }}
lang en_US.UTF-8
keyboard us
{{ snippet "network" }}
{{ snippet "timezone" }}
rootpw --lock
ignoredisk --only-use=sda
zerombr
clearpart --all --initlabel --drives=sda
autopart
reboot

%packages
@core
%end

%post --nochroot
grep -E '^(ignoredisk|clearpart)' /run/install/ks.cfg | sed 's/^/KSTEST: ksdisk /'
%end

{{ snippet "callbacks" }}
`

// needCommands fails clearly when the binary lacks a command: vm and
// test-boot are registered in commands.go by the lead.
func needCommands(t *testing.T, bin string, names ...string) {
	t.Helper()
	for _, n := range names {
		if out, err := exec.Command(bin, n, "--help").CombinedOutput(); err != nil || strings.Contains(string(out), "unknown command") {
			t.Fatalf("kickstand has no %q command (register newVMCmd and newTestBootCmd in cmd/kickstand/commands.go): %v\n%s", n, err, out)
		}
	}
}

// vmLabConfig is the netns lab plus vm1, a kvm host in state local whose
// profile uses vmTestKickstart.
func vmLabConfig(t *testing.T) (cfg, data string) {
	t.Helper()
	root, err := vmtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl := t.TempDir()
	src, err := os.ReadFile(filepath.Join(root, "examples", "templates", "test-installer.ks"))
	if err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"test-installer.ks": string(src), "vm-test.ks": vmTestKickstart} {
		if err := os.WriteFile(filepath.Join(tpl, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return labConfig(t, func(s string) string {
		s = strings.Replace(s, "templates: "+filepath.Join(root, "examples", "templates"), "templates: "+tpl, 1)
		s = strings.Replace(s, "profiles:\n", "profiles:\n  - name: test-vm\n    distro: test-installer\n    kickstart: vm-test.ks\n    kernel_args: console=ttyS0 net.ifnames=0 panic=5\n", 1)
		return s + `  - name: vm1
    macs: ["52:54:00:00:02:10"]
    ipv4: 192.0.2.12/24
    gateway4: 192.0.2.1
    nameservers: [192.0.2.1]
    interface: eth0
    platform: kvm
    profile: test-vm
    netboot: local
`
	})
}

// TestVMInstallKVM is issue 7's VM install e2e: `kickstand vm install`,
// run in the lab's server namespace beside `kickstand serve`, builds vm1,
// makes a qcow2 disk and a tap on the lab bridge, and boots the test
// installer's kernel and initrd directly under QEMU with the plan's dracut
// command line. The guest fetches its kickstart, rewritten from sda to vda
// because vm1's platform is kvm, and its %post reports built.
func TestVMInstallKVM(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, "qemu-img")
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2evm")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, data := vmLabConfig(t)
	k := startKickstand(t, ctx, lab, cfg, data)
	needCommands(t, k.bin, "vm")

	disk := filepath.Join(t.TempDir(), "vm1.qcow2")
	start := time.Now()
	out, err := lab.Cmd(ctx, lab.Srv, k.bin, "vm", "install", "--config", cfg, "--data", data, "vm1",
		"--bridge", lab.Bridge, "--disk", disk, "--disk-size", "1", "--memory", "512", "--timeout", "4m").CombinedOutput()
	console := string(out)
	if err != nil {
		t.Fatalf("vm install: %v\n%s", err, tail(console, 6000))
	}
	t.Logf("vm install took %s", time.Since(start).Round(time.Second))
	for _, want := range []string{
		"KSTEST: cmdline ip=192.0.2.12::192.0.2.1:255.255.255.0:vm1:eth0:none",
		"KSTEST: ks-fetch ok",
		"KSTEST: ksdisk ignoredisk --only-use=vda",
		"KSTEST: ksdisk clearpart --all --initlabel --drives=vda",
	} {
		if !strings.Contains(console, want) {
			t.Errorf("console lacks %q:\n%s", want, tail(console, 6000))
		}
	}
	if regexp.MustCompile(`KSTEST: ksdisk .*sda`).MatchString(console) {
		t.Errorf("the guest's kickstart still names sda:\n%s", tail(console, 6000))
	}
	if !strings.Contains(console, "vm install vm1: stage built (100%), state local") {
		t.Errorf("vm install did not report built:\n%s", tail(console, 3000))
	}
	if st, err := os.Stat(disk); err != nil || st.Size() == 0 {
		t.Errorf("qcow2 disk not created: %v", err)
	}
	tl := k.waitTimeline(t, "vm1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "local -> install (by vm install)", "http.kickstart", "callback.built", "install -> local")
	t.Logf("guest console:\n%s\ntimeline:\n%s", strings.Join(regexp.MustCompile(`(?m)^.*KSTEST: (cmdline|ks-fetch|ksdisk|done).*$`).FindAllString(console, -1), "\n"), tl)
	if strings.Contains(tl, "http.kernel") || strings.Contains(tl, "dhcp.") {
		t.Errorf("direct kernel boot should fetch no kernel and ask no DHCP:\n%s", tl)
	}
	// The tap kickstand added to the bridge is gone.
	links, _ := lab.Output(ctx, lab.Srv, "ip", "-o", "link")
	if strings.Contains(links, "ksvm-") {
		t.Errorf("tap left behind:\n%s", links)
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
