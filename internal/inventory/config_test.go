package inventory

import (
	"fmt"
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
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
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
		{"unknown profile", "    profile: p\n", "inv.yaml:18: hosts[0].profile: unknown profile \"nope\""},
		{"duplicate MAC", "", "inv.yaml:20: hosts[1].macs[0]: MAC 52:54:00:00:00:0a is also used by host a.example.com"},
		{"bad prefix", "", "inv.yaml:17: hosts[0].ipv4: \"192.0.2.10/33\" is not an address/prefix"},
		{"v6 in ipv4", "", "inv.yaml:17: hosts[0].ipv4: \"2001:db8::1/64\" is not an IPv4 address"},
		{"same address", "", "inv.yaml:21: hosts[1].ipv4: address 192.0.2.10 is also used by host a.example.com"},
		{"unknown field", "", "inv.yaml:19: colour: unknown key \"colour\""},
		{"bad release", "", "inv.yaml:6: distros[0].release: release \"solaris10\""},
		{"escaping kernel", "", "inv.yaml:8: distros[0].kernel: \"../../etc/shadow\" must be a path inside the tree"},
		{"dhcp without interfaces", "", "dhcp.interfaces: dhcp is enabled but names no interfaces"},
		{"escaping shim", "", "inv.yaml:10: distros[0].shim: \"/boot/efi/EFI/BOOT/BOOTX64.EFI\" must be a path inside the tree"},
		{"unknown arch", "", "inv.yaml:10: distros[0].arch: unknown arch \"sparc\""},
		{"unknown loader", "", "inv.yaml:13: profiles[0].loader: unknown loader \"lilo\" (want ipxe, grub, pxelinux or shim)"},
		{"secure boot insisting on pxelinux", "", "inv.yaml:15: profiles[0].insist_loader: secure_boot hands UEFI machines shim and GRUB, so it cannot insist on loader pxelinux"},
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
			case "escaping shim":
				src = strings.Replace(src, "    initrd: [initrd.img]\n", "    initrd: [initrd.img]\n    shim: /boot/efi/EFI/BOOT/BOOTX64.EFI\n", 1)
			case "unknown arch":
				src = strings.Replace(src, "    initrd: [initrd.img]\n", "    initrd: [initrd.img]\n    arch: sparc\n", 1)
			case "unknown loader":
				src = strings.Replace(src, "    distro: el9\n", "    distro: el9\n    loader: lilo\n", 1)
			case "secure boot insisting on pxelinux":
				src = strings.Replace(src, "    distro: el9\n", "    distro: el9\n    loader: pxelinux\n    secure_boot: true\n    insist_loader: true\n", 1)
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
	if err == nil || !strings.Contains(err.Error(), path+":8: distros[0].kernel: distro el9: missing file "+filepath.Join(dir, "tree", "vmlinuz")) {
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

// Issue 16 (item 5): a bad nameserver, an unknown time zone, an interface
// name the kernel would refuse and a gateway outside the host's network
// were accepted and rendered verbatim. Each is now an error naming
// file:line: field, and every one in the file is reported in one run.
func TestIssue16ValidationGaps(t *testing.T) {
	host := func(name, mac, extra string) string {
		return "  - name: " + name + "\n    macs: [\"" + mac + "\"]\n    profile: p\n" + extra
	}
	src := base +
		host("ns.example.com", "52:54:00:00:01:01", "    nameservers: [\"2401:beef:11:a53\", 192.0.2.53]\n") +
		host("tz.example.com", "52:54:00:00:01:02", "    timezone: Mars/Olympus\n") +
		host("if.example.com", "52:54:00:00:01:03", "    interface: \"eth 0\"\n") +
		host("gw.example.com", "52:54:00:00:01:04", "    ipv4: 192.0.2.20/24\n    gateway4: 198.51.100.1\n") +
		host("gw6.example.com", "52:54:00:00:01:05", "    ipv6: 2001:db8:1::20/64\n    gateway6: 2001:db8:2::1\n") +
		host("typo.example.com", "52:54:00:00:01:06", "    ipaddr: 192.0.2.30/24\n    profle: p\n") +
		host("long.example.com", "52:54:00:00:01:07", "    interface: enp0s20f0u1u2u3i4\n") +
		host("self.example.com", "52:54:00:00:01:08", "    ipv4: 192.0.2.40/24\n    gateway4: 192.0.2.40\n") +
		host("bcast.example.com", "52:54:00:00:01:09", "    ipv4: 192.0.2.41/24\n    gateway4: 192.0.2.255\n") +
		host("local.example.com", "52:54:00:00:01:0a", "    timezone: Local\n    interface: eth0:1\n") +
		"  - name: type.example.com\n    uuid: 8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08\n    profile: p\n    macs: 5\n" +
		"dhcp:\n  interfaces: [\"../lo\"]\n"
	_, err := Parse("inv.yaml", []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{
		`inv.yaml:22: hosts[1].nameservers[0]: "2401:beef:11:a53" is not an IP address`,
		`inv.yaml:26: hosts[2].timezone: unknown time zone "Mars/Olympus"`,
		`inv.yaml:30: hosts[3].interface: interface name "eth 0" contains whitespace`,
		`inv.yaml:35: hosts[4].gateway4: 198.51.100.1 is outside the host's network 192.0.2.0/24`,
		`inv.yaml:40: hosts[5].gateway6: 2001:db8:2::1 is outside the host's network 2001:db8:1::/64`,
		`inv.yaml:44: hosts[6].ipaddr: unknown key "ipaddr" (did you mean "ipv4"?)`,
		`inv.yaml:45: hosts[6].profle: unknown key "profle" (did you mean "profile"?)`,
		`inv.yaml:49: hosts[7].interface: interface name "enp0s20f0u1u2u3i4" is 17 bytes; the kernel allows at most 15`,
		`inv.yaml:54: hosts[8].gateway4: 192.0.2.40 is the host's own address`,
		`inv.yaml:59: hosts[9].gateway4: 192.0.2.255 is the network or broadcast address of 192.0.2.0/24`,
		`inv.yaml:63: hosts[10].timezone: unknown time zone "Local"`,
		`inv.yaml:64: hosts[10].interface: interface name "eth0:1" contains '/' or ':'`,
		`inv.yaml:68: hosts[11].macs: want a list, not a number`,
		`inv.yaml:70: dhcp.interfaces[0]: interface name "../lo" contains '/' or ':'`,
	} {
		if !strings.Contains(err.Error(), want+"") {
			t.Errorf("errors lack %q", want)
		}
	}
	// In the order of the file, as the operator reads it.
	last := 0
	for _, l := range strings.Split(err.Error(), "\n") {
		var n int
		if _, e := fmt.Sscanf(l, "inv.yaml:%d:", &n); e == nil {
			if n < last {
				t.Errorf("line %d reported after line %d", n, last)
			}
			last = n
		}
	}
	if t.Failed() {
		t.Logf("errors:\n%v", err)
	}
	// The good ones of each kind pass: the second nameserver, a zone,
	// a VLAN interface, gateways inside the network and a link-local
	// IPv6 router.
	good := base + host("ok.example.com", "52:54:00:00:02:01", "    nameservers: [192.0.2.53, \"2001:db8::53\"]\n    timezone: America/Los_Angeles\n    interface: eth0.100\n"+
		"    ipv4: 192.0.2.50/24\n    gateway4: 192.0.2.1\n    ipv6: 2001:db8::50/64\n    gateway6: fe80::1\n") +
		host("ok2.example.com", "52:54:00:00:02:02", "    ipv6: 2001:db8::51/64\n    gateway6: 2001:db8::1\n    timezone: UTC\n")
	if _, err := Parse("inv.yaml", []byte(good)); err != nil {
		t.Fatalf("a valid host was refused: %v", err)
	}
}

// The time zone check must not depend on the machine's tzdata package:
// with no zoneinfo directory at all (a minimal Debian, a container), the
// database built into the binary answers.
func TestTimezoneWithoutSystemTzdata(t *testing.T) {
	t.Setenv("ZONEINFO", filepath.Join(t.TempDir(), "none"))
	if !validZone("Europe/Berlin") || !validZone("America/Argentina/Buenos_Aires") || validZone("Mars/Olympus") {
		t.Fatal("zone check depends on the system's tzdata")
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

// Issue 16 (item 2): a host whose kickstart is the built-in one, with no
// root password hash and no SSH key (its own or its profile's), would be
// installed with every login locked: it is refused at load, at its line.
// Malformed login variables are refused too, where they are written.
func TestIssue16LockedDefaultKickstartRefused(t *testing.T) {
	noLogin := strings.Replace(base, "    vars: {ssh_keys: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com\"}\n", "", 1)
	_, err := Parse("inv.yaml", []byte(noLogin))
	if err == nil || !strings.Contains(err.Error(), "inv.yaml:14: hosts[0].vars: nobody could log into the installed machine: the built-in kickstart locks root") {
		t.Fatalf("err = %v", err)
	}
	// Any one of them, on the host, makes it loginable; a template of
	// the operator's own is the operator's business.
	for _, fix := range []string{
		"    vars: {rootpw: \"$6$kickstandtest$5MS9oYuEhtNmSVDHCkrJI/DqZnbLIT/8EAaPqkN.4ywAIgaWBmTuZSsEv4Yys3y6iq.mc7wUFaTvVGsO537yn/\"}\n",
		"    vars:\n      user: ops\n      ssh_keys: |\n        ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com\n",
	} {
		if _, err := Parse("inv.yaml", []byte(noLogin+fix)); err != nil {
			t.Errorf("with %q: %v", fix, err)
		}
	}
	custom := strings.Replace(noLogin, "    distro: el9\n", "    distro: el9\n    kickstart: mine.ks\n", 1)
	if _, err := Parse("inv.yaml", []byte(custom)); err != nil {
		t.Errorf("a profile with its own template: %v", err)
	}
	bad := noLogin + "    vars:\n      rootpw: hunter2\n      user: Root\n      ssh_keys: \"ssh-rsa not-base64!\"\n"
	_, err = Parse("inv.yaml", []byte(bad))
	for _, want := range []string{
		"inv.yaml:19: hosts[0].vars.rootpw: want a crypted password hash",
		"inv.yaml:20: hosts[0].vars.user: \"Root\" is not a user name",
		"inv.yaml:21: hosts[0].vars.ssh_keys: key 1 is not an OpenSSH public key line",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("errors lack %q:\n%v", want, err)
		}
	}
	// A fleet without logins is named host by host, then counted.
	var many strings.Builder
	many.WriteString(noLogin)
	for i := range 15 {
		fmt.Fprintf(&many, "  - name: h%d.example.com\n    macs: [\"52:54:00:00:03:%02x\"]\n    profile: p\n", i, i)
	}
	_, err = Parse("inv.yaml", []byte(many.String()))
	if err == nil || strings.Count(err.Error(), "nobody could log into the installed machine") != 10 ||
		!strings.Contains(err.Error(), "inv.yaml:11: profiles[0].vars: and 6 more hosts of profile p nobody could log into") {
		t.Errorf("err = %v", err)
	}
}

// The shipped examples and the README's inventory block load as they are.
func TestShippedExamplesLoad(t *testing.T) {
	files, _ := filepath.Glob("../../examples/*.yaml")
	if len(files) == 0 {
		t.Fatal("no examples found")
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		if len(c.Warnings) > 0 {
			t.Errorf("%s: warnings %v", f, c.Warnings)
		}
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(readme), "## The inventory file\n\n```yaml\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README has no inventory block")
	}
	if _, err := Parse("README.md", []byte(block)); err != nil {
		t.Errorf("README's inventory block: %v", err)
	}
}

// A host whose DHCPv6 client carries neither a MAC nor a UUID (a DUID-EN)
// may be matched by its dhcp6.duids reservation alone; without one it
// matches nothing and is refused.
func TestDUIDOnlyHost(t *testing.T) {
	host := "  - name: v6only.example.com\n    ipv6: 2001:db8::30/64\n    profile: p\n"
	resv := "dhcp6:\n  duids: [{duid: \"00:02:00:00:7e:d9:01:02:03:04\", host: v6only.example.com}]\n"
	if _, err := Parse("inv.yaml", []byte(base+host+resv)); err != nil {
		t.Errorf("a host reserved by DUID alone: %v", err)
	}
	_, err := Parse("inv.yaml", []byte(base+host))
	if err == nil || !strings.Contains(err.Error(), "hosts[1].macs: host v6only.example.com has neither macs nor uuid nor a dhcp6.duids reservation") {
		t.Errorf("a host nothing can match: %v", err)
	}
}
