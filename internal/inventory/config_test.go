package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const base = `
server:
  address_v4: 192.0.2.1
distros:
  - name: el9
    release: rhel9
    tree: tree
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: el9
hosts:
  - name: a.example.com
    macs: ["52:54:00:00:00:0a"]
    ipv4: 192.0.2.10/24
    profile: p
`

func TestParseValid(t *testing.T) {
	c, err := Parse("inv.yaml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	h := c.Hosts[0]
	if h.Netboot != StateLocal || h.Platform != PlatformBaremetal || c.Profiles[0].Loader != LoaderIPXE {
		t.Errorf("defaults not applied: %+v %+v", h, c.Profiles[0])
	}
	if c.Server.HTTPPort != 8080 || c.Menu.Unknown != "menu" {
		t.Errorf("server defaults: %+v menu %+v", c.Server, c.Menu)
	}
}

// Each bad config must be rejected with the file, the line and the field.
func TestParseRejects(t *testing.T) {
	cases := []struct {
		name, edit, want string
	}{
		{"unknown profile", "    profile: p\n", "inv.yaml:17: hosts[0].profile: unknown profile \"nope\""},
		{"duplicate MAC", "", "inv.yaml:19: hosts[1].macs[0]: MAC 52:54:00:00:00:0a is also used by host a.example.com"},
		{"bad prefix", "", "inv.yaml:16: hosts[0].ipv4: \"192.0.2.10/33\" is not an address/prefix"},
		{"v6 in ipv4", "", "inv.yaml:16: hosts[0].ipv4: \"2001:db8::1/64\" is not an IPv4 address"},
		{"same address", "", "inv.yaml:20: hosts[1].ipv4: address 192.0.2.10 is also used by host a.example.com"},
		{"unknown field", "", "inv.yaml:18: colour: unknown field"},
		{"bad release", "", "inv.yaml:6: distros[0].release: release \"solaris10\""},
		{"escaping kernel", "", "inv.yaml:8: distros[0].kernel: \"../../etc/shadow\" must be a path inside the tree"},
		{"dhcp without interfaces", "", "dhcp.interfaces: dhcp is enabled but names no interfaces"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			src := base
			switch tc.name {
			case "unknown profile":
				src = strings.Replace(src, "    profile: p\n", "    profile: nope\n", 1)
			case "duplicate MAC":
				src += "  - name: b.example.com\n    macs: [\"52-54-00-00-00-0A\"]\n    profile: p\n"
			case "bad prefix":
				src = strings.Replace(src, "192.0.2.10/24", "192.0.2.10/33", 1)
			case "v6 in ipv4":
				src = strings.Replace(src, "192.0.2.10/24", "2001:db8::1/64", 1)
			case "same address":
				src += "  - name: b.example.com\n    macs: [\"52:54:00:00:00:0b\"]\n    ipv4: 192.0.2.10/25\n    profile: p\n"
			case "unknown field":
				src += "colour: blue\n"
			case "bad release":
				src = strings.Replace(src, "rhel9", "solaris10", 1)
			case "escaping kernel":
				src = strings.Replace(src, "kernel: vmlinuz", "kernel: ../../etc/shadow", 1)
			case "dhcp without interfaces":
				src += "dhcp:\n  enabled: true\n  subnets: [{subnet: 192.0.2.0/24}]\n"
			}
			_, err := Parse("inv.yaml", []byte(src))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestCheckFilesNamesMissingKernel(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "inv.yaml")
	if err := os.WriteFile(path, []byte(base), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	err = c.CheckFiles()
	if err == nil || !strings.Contains(err.Error(), "distro el9: missing file "+filepath.Join(dir, "tree", "vmlinuz")) {
		t.Fatalf("CheckFiles = %v", err)
	}
	os.MkdirAll(filepath.Join(dir, "tree"), 0o755)
	for _, f := range []string{"vmlinuz", "initrd.img"} {
		os.WriteFile(filepath.Join(dir, "tree", f), []byte("x"), 0o644)
	}
	if err := c.CheckFiles(); err != nil {
		t.Fatalf("CheckFiles with files present: %v", err)
	}
}

func TestSeedNameserversWarnNotFail(t *testing.T) {
	src := strings.Replace(base, "    profile: p\n", "    profile: p\n    nameservers: [\"2401:beef:11:a53\"]\n", 1)
	c, err := Parse("inv.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0], "hosts[0].nameservers[0]") {
		t.Errorf("warnings = %v", c.Warnings)
	}
}

func TestParseRelease(t *testing.T) {
	for in, want := range map[string]string{"rhel7.2": "rhel7.2", "CentOS7.2": "rhel7.2", "rocky9": "rhel9", "fedora40": "fedora40", "el6": "rhel6"} {
		r, err := ParseRelease(in)
		if err != nil || r.String() != want {
			t.Errorf("ParseRelease(%q) = %v, %v; want %s", in, r, err, want)
		}
	}
	for _, bad := range []string{"", "rhel", "7.2", "debian12", "rhel7.x"} {
		if _, err := ParseRelease(bad); err == nil {
			t.Errorf("ParseRelease(%q) accepted", bad)
		}
	}
	r6, _ := ParseRelease("rhel6")
	r7, _ := ParseRelease("rhel7.0")
	f16, _ := ParseRelease("fedora16")
	if r6.Dracut() || !r7.Dracut() || f16.Dracut() {
		t.Error("Dracut() wrong")
	}
	r72, _ := ParseRelease("rhel7.2")
	r73, _ := ParseRelease("rhel7.3")
	r7x, _ := ParseRelease("rhel7")
	if !r72.AtMost(7, 2) || r73.AtMost(7, 2) || r7x.AtMost(7, 2) || !r6.AtMost(7, 2) {
		t.Error("AtMost wrong")
	}
}
