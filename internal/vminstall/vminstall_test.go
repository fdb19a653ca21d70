package vminstall

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/store"
)

func TestPlanSandboxNet(t *testing.T) {
	cases := []struct {
		name   string
		h      inventory.Host
		addrs  []string
		v4, v6 string
	}{
		{"in the lab prefix", inventory.Host{IPv4: "192.0.2.10/24", Gateway4: "192.0.2.1"},
			[]string{"192.0.2.1/24", "2001:db8::1/64"}, "192.0.2.1", "2001:db8::1"},
		{"elsewhere with a gateway", inventory.Host{IPv4: "198.51.100.16/24", Gateway4: "198.51.100.1"},
			[]string{"192.0.2.1/24", "2001:db8::1/64", "198.51.100.1/24"}, "192.0.2.1", "2001:db8::1"},
		{"elsewhere without a gateway", inventory.Host{IPv4: "203.0.113.1/25"},
			[]string{"192.0.2.1/24", "2001:db8::1/64", "203.0.113.2/25"}, "203.0.113.2", "2001:db8::1"},
		{"the server's own address", inventory.Host{IPv4: "192.0.2.1/24"},
			[]string{"192.0.2.254/24", "2001:db8::1/64"}, "192.0.2.254", "2001:db8::1"},
		{"IPv6 elsewhere", inventory.Host{IPv6: "2001:db8:11::31/64", Gateway6: "2001:db8:11::1"},
			[]string{"192.0.2.1/24", "2001:db8::1/64", "2001:db8:11::1/64"}, "192.0.2.1", "2001:db8::1"},
		{"IPv6 elsewhere, no gateway", inventory.Host{IPv6: "2001:db8:11::31/64"},
			[]string{"192.0.2.1/24", "2001:db8::1/64", "2001:db8:11::1/64"}, "192.0.2.1", "2001:db8:11::1"},
	}
	for _, c := range cases {
		n := PlanSandboxNet(&c.h)
		var got []string
		for _, a := range n.Addrs {
			got = append(got, a.String())
		}
		if !slices.Equal(got, c.addrs) || n.V4.String() != c.v4 || n.V6.String() != c.v6 {
			t.Errorf("%s: addrs %v v4 %s v6 %s; want %v %s %s", c.name, got, n.V4, n.V6, c.addrs, c.v4, c.v6)
		}
	}
}

func target() *boot.Target {
	return &boot.Target{
		Record: &inventory.HostRecord{Host: inventory.Host{Name: "bios1", MACs: []string{"52:54:00:00:00:10"},
			IPv4: "192.0.2.10/24", Gateway4: "192.0.2.1", Profile: "p", Platform: "kvm", Netboot: "local"},
			State: "local", Origin: "live"},
		Profile: &inventory.Profile{Name: "p", Distro: "d", Kickstart: "x.ks", Loader: "ipxe", KernelArgs: "console=ttyS0"},
		Distro:  &inventory.Distro{Name: "d", Release: "rhel9", Tree: "trees/d", Kernel: "vmlinuz", Initrds: []string{"initrd.img"}},
	}
}

// The sandbox config is valid for the real loader, serves only the host
// under test in install state on the sandbox bridge, and resolves the
// real config's relative paths against the real config's directory.
func TestSandboxConfig(t *testing.T) {
	real, err := inventory.Parse("/etc/ks/kickstand.yaml", []byte(`
server: {http: "192.0.2.5:8081", data_dir: data, templates: tpl, loaders: [ld], token_ttl: 2h}
distros: [{name: d, release: rhel9, tree: trees/d, kernel: vmlinuz, initrd: [initrd.img]}]
profiles: [{name: p, distro: d, kickstart: x.ks}]
hosts: [{name: bios1, macs: ["52:54:00:00:00:10"], profile: p}, {name: other, macs: ["52:54:00:00:00:11"], profile: p, netboot: install}]
dhcp: {enabled: true, interfaces: [eth7], subnets: [{subnet: 10.1.0.0/16, pool: 10.1.0.10-10.1.0.20}]}
syslog: {enabled: true, listen: "0.0.0.0:5514"}
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range []int{4, 6} {
		tg := target()
		c := SandboxConfig(real, tg, PlanSandboxNet(&tg.Record.Host), "/tmp/sb/data", fam)
		b, err := yaml.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		got, err := inventory.Parse("/tmp/sb/kickstand.yaml", b)
		if err != nil {
			t.Fatalf("family %d: sandbox config does not load: %v\n%s", fam, err, b)
		}
		switch {
		case len(got.Hosts) != 1 || got.Hosts[0].Name != "bios1" || got.Hosts[0].Netboot != "install":
			t.Errorf("hosts: %+v", got.Hosts)
		case got.Distros[0].Tree != "/etc/ks/trees/d" || got.Server.Templates != "/etc/ks/tpl" || got.Server.Loaders[0] != "/etc/ks/ld":
			t.Errorf("paths not made absolute: tree %s templates %s loaders %v", got.Distros[0].Tree, got.Server.Templates, got.Server.Loaders)
		case got.Server.HTTP != ":8081" || got.Server.AddressV4 != "192.0.2.1" || got.Server.DataDir != "/tmp/sb/data":
			t.Errorf("server: %+v", got.Server)
		case !slices.Equal(got.DHCP.Interfaces, []string{SandboxBridge}) || got.DHCP.Subnets[0].Subnet != "192.0.2.0/24":
			t.Errorf("dhcp: %+v", got.DHCP)
		case got.Menu.Unknown != "ignore":
			t.Errorf("menu: %+v", got.Menu)
		case got.Syslog.Listen != ":5514":
			t.Errorf("syslog: %+v", got.Syslog)
		case got.DHCP6.Enabled != (fam == 6):
			t.Errorf("family %d: dhcp6 %+v", fam, got.DHCP6)
		case time.Duration(got.Server.TokenTTL) != 2*time.Hour:
			t.Errorf("token ttl %v", got.Server.TokenTTL)
		}
		if tg.Record.Netboot != "local" {
			t.Error("SandboxConfig changed the caller's host")
		}
	}
}

func ev(at time.Time, kind, detail string, data map[string]any) store.Event {
	return store.Event{At: at, Kind: kind, Detail: detail, Data: data}
}

func TestJudge(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	ok := func(s int) map[string]any { return map[string]any{"status": s} }
	chain := []store.Event{
		ev(t0, "dhcp.ack", "ack", nil),
		ev(t0.Add(time.Second), "http.script", "GET /boot.ipxe", ok(200)),
		ev(t0.Add(2*time.Second), "http.kernel", "GET /distros/d/vmlinuz", ok(200)),
		ev(t0.Add(3*time.Second), "http.initrd", "GET /distros/d/initrd.img", ok(200)),
	}
	ks := ev(t0.Add(20*time.Second), "http.kickstart", "GET /ks/<token>", ok(200))
	cases := []struct {
		name       string
		evs        []store.Event
		now        time.Time
		final      bool
		done, pass bool
		reason     string
	}{
		{"nothing yet", nil, t0, false, false, false, ""},
		{"nothing at all", nil, t0, true, true, false, "the VM stopped"},
		{"kernel running", chain, t0.Add(30 * time.Second), false, false, false, ""},
		{"kickstart only", append(chain[:4:4], ks), t0.Add(30 * time.Second), false, false, false, ""},
		{"test installer built", append(chain[:4:4], ks, ev(t0.Add(25*time.Second), "callback.built", "ok", nil)), t0, false, true, true, "kickstart fetched, the install reported built"},
		{"stage2", append(chain[:4:4], ks, ev(t0.Add(25*time.Second), "http.stage2", "GET", ok(200))), t0, false, true, true, "kickstart fetched, stage2 fetched"},
		{"treeinfo", append(chain[:4:4], ks, ev(t0.Add(25*time.Second), "http.repodata", "GET", ok(200))), t0, false, true, true, "repository metadata"},
		{"stage2 404 is not a pass", append(chain[:4:4], ks, ev(t0.Add(25*time.Second), "http.stage2", "GET /x", ok(404))), t0.Add(26 * time.Second), false, false, false, ""},
		{"kernel 404, within grace", []store.Event{chain[0], chain[1], ev(t0.Add(2*time.Second), "http.file", "GET /distros/d/nope", ok(404))}, t0.Add(5 * time.Second), false, false, false, ""},
		{"kernel 404, after grace", []store.Event{chain[0], chain[1], ev(t0.Add(2*time.Second), "http.file", "GET /distros/d/nope", ok(404))}, t0.Add(13 * time.Second), false, true, false, "GET /distros/d/nope failed"},
		{"a failure then progress", []store.Event{chain[0], ev(t0, "http.file", "GET /x", ok(404)), chain[1]}, t0.Add(time.Minute), false, false, false, ""},
		{"failed callback", append(chain[:4:4], ks, ev(t0.Add(25*time.Second), "callback.failed", "installer reported failure", nil)), t0, false, true, false, "reported failure"},
		// UEFI's size probe is an unfinished read: fine when the download
		// follows, a stuck firmware when nothing does.
		{"size probe then download", []store.Event{chain[0], ev(t0, "tftp.file", "ipxe.efi (size probe)", map[string]any{"completed": false}),
			ev(t0, "tftp.file", "ipxe.efi", map[string]any{"completed": true})}, t0.Add(time.Minute), false, false, false, ""},
		{"size probe alone", []store.Event{chain[0], ev(t0, "tftp.file", "ipxe.efi (size probe)", map[string]any{"completed": false})}, t0.Add(time.Minute), false, true, false, "ipxe.efi (size probe) failed"},
	}
	for _, c := range cases {
		j := judge(c.evs, c.now, c.final, 10*time.Second)
		if j.done != c.done || j.pass != c.pass || !strings.Contains(j.reason, c.reason) {
			t.Errorf("%s: got %+v, want done=%v pass=%v reason~%q", c.name, j, c.done, c.pass, c.reason)
		}
	}
}

func TestFailedRequests(t *testing.T) {
	t0 := time.Now()
	evs := []store.Event{
		ev(t0, "http.file", "GET /distros/d/nope", map[string]any{"path": "/distros/d/nope", "status": 404}),
		ev(t0, "http.file", "GET /distros/d/nope", map[string]any{"path": "/distros/d/nope", "status": float64(404)}),
		ev(t0, "http.script", "GET /boot.ipxe", map[string]any{"path": "/boot.ipxe", "status": 200}),
		ev(t0, "tftp.file", "x", map[string]any{"completed": false}),
	}
	got := failedRequests(evs)
	if len(got) != 1 || got[0].path != "/distros/d/nope" || got[0].status != "HTTP 404" {
		t.Errorf("failedRequests = %+v", got)
	}
	dir := t.TempDir()
	cfg := &inventory.Config{Path: filepath.Join(dir, "k.yaml")}
	m := expectedPaths(cfg, target())
	if !strings.Contains(m["/distros/d/vmlinuz"], "the kernel of distro d: "+filepath.Join(dir, "trees/d/vmlinuz")+" does not exist") {
		t.Errorf("expectedPaths = %v", m)
	}
}

func TestTestBootQEMU(t *testing.T) {
	bios, err := testBootQEMU(TestBootOptions{Firmware: "bios", Family: 4, MemoryMiB: 512}, "52:54:00:00:00:10", "u-1", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Join(bios, " ")
	for _, w := range []string{"pc,accel=tcg", "e1000,netdev=n0,mac=52:54:00:00:00:10,bootindex=1", "-boot n", "-uuid u-1", "-no-reboot", "-m 512"} {
		if !strings.Contains(s, w) {
			t.Errorf("bios args lack %q: %s", w, s)
		}
	}
	if _, err := testBootQEMU(TestBootOptions{Firmware: "uefi", Family: 6}, "m", "", t.TempDir()); err != nil {
		t.Skipf("no OVMF: %v", err)
	}
	uefi, _ := testBootQEMU(TestBootOptions{Firmware: "uefi", Family: 4}, "m", "", t.TempDir())
	s = strings.Join(uefi, " ")
	for _, w := range []string{"q35,accel=tcg", "romfile=", "IPv6PXESupport,string=n", ovmfCode} {
		if !strings.Contains(s, w) {
			t.Errorf("uefi args lack %q: %s", w, s)
		}
	}
}

func TestOSVariant(t *testing.T) {
	for rel, want := range map[string]string{"centos6.10": "rhel6.10", "rhel7": "rhel7-unknown", "rocky9.3": "rhel9.3", "fedora40": "fedora40"} {
		r, err := inventory.ParseRelease(rel)
		if err != nil {
			t.Fatal(err)
		}
		if got := OSVariant(r); got != want {
			t.Errorf("OSVariant(%s) = %s, want %s", rel, got, want)
		}
	}
}

// Several initrds (a tree initrd plus kickstand's generated overlay) are
// concatenated for QEMU and xl, which take one; a single tree initrd is
// used in place.
func TestInitrdAssembly(t *testing.T) {
	g := &Guest{Name: "h", Platform: kickstart.PlatformKVM, MAC: "52:54:00:00:00:01", Kernel: "/t/vmlinuz",
		Initrds: []Initrd{{Server: "distros/d/initrd.img", Local: "/t/initrd.img"}}, Cmdline: "a b"}
	p, err := QEMU(g, Options{Tap: "tap0", Disk: "none", WorkDir: "/w"})
	if err != nil {
		t.Fatal(err)
	}
	if p.Assemble || p.Initrd != "/t/initrd.img" {
		t.Errorf("one tree initrd: %+v", p)
	}
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	writeFile(t, a, "first")
	writeFile(t, b, "second")
	g.Initrds = []Initrd{{Server: "distros/d/a", Local: a}, {Server: "distros/d/b", Local: b}}
	p, _ = QEMU(g, Options{Tap: "tap0", Disk: "none", WorkDir: dir})
	if !p.Assemble || p.Initrd != filepath.Join(dir, "initrd.img") {
		t.Fatalf("two initrds: %+v", p)
	}
	if err := assembleInitrd(t.Context(), g, p.Initrd, nil); err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, p.Initrd); got != "firstsecond" {
		t.Errorf("assembled %q", got)
	}
	g.Initrds = append(g.Initrds, Initrd{Server: "kickstand/overlay/x.img"})
	if err := assembleInitrd(t.Context(), g, p.Initrd, nil); err == nil {
		t.Error("a generated initrd without an opener must fail")
	}
}

func TestShellJoin(t *testing.T) {
	got := ShellJoin([]string{"qemu", "-append", "ip=1.2.3.4::1.2.3.1:255.255.255.0:h:eth0:none inst.ks=http://x/ks/T", "", "it's"})
	want := `qemu -append 'ip=1.2.3.4::1.2.3.1:255.255.255.0:h:eth0:none inst.ks=http://x/ks/T' '' 'it'\''s'`
	if got != want {
		t.Errorf("ShellJoin = %s", got)
	}
}

func TestStableMAC(t *testing.T) {
	a, b := stableMAC("h1", kickstart.PlatformXen), stableMAC("h1", kickstart.PlatformXen)
	if a != b || !strings.HasPrefix(a, "00:16:3e:") || inventory.NormalMAC(a) != a {
		t.Errorf("stableMAC: %s %s", a, b)
	}
	if stableMAC("h2", kickstart.PlatformKVM)[:8] != "52:54:00" {
		t.Error("kvm prefix")
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzShellJoin: whatever the inventory puts in a command line (kernel
// arguments, paths), the --print output gives a shell exactly those words.
func FuzzShellJoin(f *testing.F) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		f.Skip("no sh")
	}
	for _, s := range []string{"", "plain", "ip=1.2.3.4::1.2.3.1:255.255.255.0:h:eth0:none inst.ks=http://x/ks/T", "it's", `a"b\c$d` + "`e`", "new\nline", "*?[x]", "~root", "a;b|c&d>e"} {
		f.Add(s, "second word")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if strings.ContainsRune(a+b, 0) {
			return // no argv can hold NUL
		}
		got, err := exec.Command(sh, "-c", "printf '%s\\0' "+ShellJoin([]string{a, b})).Output()
		if err != nil {
			t.Fatalf("sh rejected %s: %v", ShellJoin([]string{a, b}), err)
		}
		if want := a + "\x00" + b + "\x00"; string(got) != want {
			t.Fatalf("ShellJoin(%q, %q) = %s: the shell saw %q", a, b, ShellJoin([]string{a, b}), got)
		}
	})
}
