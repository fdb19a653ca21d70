package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const vmConfig = "testdata/vm/vm.yaml"

// TestVMInstallGolden pins the command lines of `vm install --print` for an
// EL6 and an EL7 host on each platform: the Xen xl config with its
// equivalent virt-install --paravirt line, and for KVM the QEMU direct
// kernel boot and the virt-install line. Tokens are fixed by storeFor; the
// data directory is a temporary one and shows as $DATA.
func TestVMInstallGolden(t *testing.T) {
	data := storeFor(t, vmConfig)
	cases := []struct {
		host, kind string
		args       []string
	}{
		{"xen6.example.com", "xen", nil},
		{"xen7.example.com", "xen", nil},
		{"xen7.example.com", "xen-bridge", []string{"--bridge", "br-dmz", "--disk", "/dev/vg0/xen7", "--memory", "4096"}},
		{"kvm6.example.com", "qemu", []string{"--bridge", "br0", "--disk", "/srv/vm/kvm6.qcow2"}},
		{"kvm7.example.com", "qemu", []string{"--tap", "tap7", "--disk", "none", "--timeout", "10m", "--accel", "kvm"}},
		{"kvm6.example.com", "virt-install", []string{"--virt-install", "--bridge", "br0"}},
		{"kvm7.example.com", "virt-install", []string{"--virt-install", "--disk-size", "40"}},
	}
	for _, c := range cases {
		t.Run(c.host+"/"+c.kind, func(t *testing.T) {
			args := append([]string{"vm", "install", "--print", "--config", vmConfig, "--data", data, c.host}, c.args...)
			out, err := run(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			out = strings.ReplaceAll(out, data, "$DATA")
			golden := filepath.Join("testdata", "vm", "golden", strings.Split(c.host, ".")[0]+"."+c.kind)
			if *update {
				os.MkdirAll(filepath.Dir(golden), 0o755)
				if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create)", err)
			}
			if out != string(want) {
				t.Errorf("vm install --print %s differs from %s:\n--- got\n%s\n--- want\n%s", strings.Join(c.args, " "), golden, out, want)
			}
		})
	}
}

// The guest's kernel arguments are the boot decision's, in the release's
// syntax, and its kickstart is the one rewritten for the platform: the
// guest fetches exactly what `render` shows.
func TestVMInstallMatchesRender(t *testing.T) {
	data := storeFor(t, vmConfig)
	for _, c := range []struct{ host, disk, legacy string }{
		{"kvm6.example.com", "vda", "ip=198.51.100.66 netmask=255.255.255.0 gateway=198.51.100.1"},
		{"kvm7.example.com", "vda", ""},
		{"xen6.example.com", "xvda", "ip=203.0.113.66 netmask=255.255.255.0 gateway=203.0.113.1"},
		{"xen7.example.com", "xvda", ""},
	} {
		cmdline, err := run(t, "render", "cmdline", "--config", vmConfig, "--data", data, c.host)
		if err != nil {
			t.Fatal(err)
		}
		cmdline = strings.TrimSpace(cmdline)
		out, err := run(t, "vm", "install", "--print", "--virt-install", "--config", vmConfig, "--data", data, c.host)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "--extra-args '"+cmdline+"'") {
			t.Errorf("%s: virt-install lacks the rendered cmdline %q:\n%s", c.host, cmdline, out)
		}
		if c.legacy != "" && (!strings.Contains(cmdline, c.legacy) || !strings.Contains(cmdline, " ks=http://")) {
			t.Errorf("%s: EL6 cmdline not in legacy syntax: %s", c.host, cmdline)
		}
		if c.legacy == "" && (!strings.Contains(cmdline, "ip=") || !strings.Contains(cmdline, ":none") || !strings.Contains(cmdline, "inst.ks=")) {
			t.Errorf("%s: EL7 cmdline not in dracut syntax: %s", c.host, cmdline)
		}
		ks, stderr, err := run2(t, "render", "kickstart", "--config", vmConfig, "--data", data, c.host)
		if err != nil || strings.Contains(stderr, ": error:") {
			t.Fatalf("%s: render kickstart: %v\n%s", c.host, err, stderr)
		}
		for _, want := range []string{"ignoredisk --only-use=" + c.disk, "--drives=" + c.disk, "--ondisk=" + c.disk, "--driveorder=" + c.disk} {
			if !strings.Contains(ks, want) {
				t.Errorf("%s: kickstart lacks %q:\n%s", c.host, want, ks)
			}
		}
		if strings.Contains(ks, "=sda") {
			t.Errorf("%s: kickstart still names sda:\n%s", c.host, ks)
		}
	}
}

func TestVMInstallRefuses(t *testing.T) {
	data := storeFor(t, vmConfig)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"metal.example.com"}, "only kvm and xen hosts"},
		{[]string{"kvm7.example.com"}, "give one of --bridge BR"},
		{[]string{"kvm7.example.com", "--bridge", "br0", "--tap", "tap0"}, "give one of --bridge BR"},
		{[]string{"kvm7.example.com", "--tap", "tap0", "--virt-install"}, "--tap works only with QEMU"},
		{[]string{"xen7.example.com", "--tap", "tap0"}, "--tap works only with QEMU"},
		{[]string{"kvm7.example.com", "--bridge", "br0", "--accel", "hvf"}, "want tcg or kvm"},
		{[]string{"nope.example.com"}, "nope.example.com"},
	} {
		args := append([]string{"vm", "install", "--print", "--config", vmConfig, "--data", data}, c.args...)
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("vm install %v: err %v, want %q", c.args, err, c.want)
		}
	}
	// Running (not printing) a Xen install says where to run it.
	_, err := run(t, "vm", "install", "--config", vmConfig, "--data", data, "xen7.example.com")
	if err == nil || !strings.Contains(err.Error(), "--print") {
		t.Errorf("running a xen install: err %v", err)
	}
}

// A host that is not in install state previews with a placeholder token
// and is not built by --print.
func TestVMInstallPrintPreview(t *testing.T) {
	data := storeFor(t, vmConfig)
	if _, err := run(t, "host", "set-state", "--config", vmConfig, "--data", data, "kvm7.example.com", "local"); err != nil {
		t.Fatal(err)
	}
	out, err := run(t, "vm", "install", "--print", "--virt-install", "--config", vmConfig, "--data", data, "kvm7.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "# preview:") || strings.Contains(out, "TOKEN-kvm7") {
		t.Errorf("preview output:\n%s", out)
	}
	show, err := run(t, "host", "show", "--config", vmConfig, "--data", data, "kvm7.example.com")
	if err != nil || !strings.Contains(show, `"state": "local"`) {
		t.Errorf("--print changed the host's state: %v\n%s", err, show)
	}
}

// test-boot checks what it was asked before it needs root or QEMU.
func TestTestBootRefuses(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"kvm7.example.com", "--firmware", "coreboot"}, `firmware "coreboot"`},
		{[]string{"kvm7.example.com", "--family", "5"}, "family 5"},
		{[]string{"kvm7.example.com", "--family", "6"}, "--family 6 needs --firmware uefi"},
		{[]string{"nope.example.com"}, "nope.example.com"},
	} {
		args := append([]string{"test-boot", "--config", vmConfig, "--data", "-"}, c.args...)
		_, err := run(t, args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("test-boot %v: err %v, want %q", c.args, err, c.want)
		}
	}
}
