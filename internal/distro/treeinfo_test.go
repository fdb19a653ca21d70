package distro

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func readTreeinfo(t *testing.T, name string) *Treeinfo {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata/treeinfo", name))
	if err != nil {
		t.Fatal(err)
	}
	ti, err := ParseTreeinfo(b)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ti
}

func TestParseTreeinfoReal(t *testing.T) {
	type want struct {
		family, version, arch, stage2, release string
		variants                               []string // id=repository
		platforms                              []string
		checksums                              int
	}
	cases := map[string]want{
		"centos6.3.treeinfo":    {"CentOS", "6.3", "x86_64", "images/install.img", "centos6.3", nil, []string{"x86_64", "xen"}, 5},
		"centos7.2.treeinfo":    {"CentOS", "7", "x86_64", "LiveOS/squashfs.img", "centos7", nil, []string{"x86_64", "xen"}, 6},
		"rhel8.10.treeinfo":     {"Red Hat Enterprise Linux", "8.10", "x86_64", "images/install.img", "rhel8.10", []string{"AppStream=AppStream", "BaseOS=BaseOS"}, []string{"x86_64", "xen"}, 4},
		"rhel9.4.treeinfo":      {"Red Hat Enterprise Linux", "9.4", "x86_64", "images/install.img", "rhel9.4", []string{"AppStream=AppStream", "BaseOS=BaseOS"}, []string{"x86_64", "xen"}, 4},
		"fedora40.treeinfo":     {"Fedora", "40", "x86_64", "images/install.img", "fedora40", []string{"Server=."}, []string{"x86_64", "xen"}, 4},
		"aarch64-only.treeinfo": {"Rocky Linux", "9.3", "aarch64", "images/install.img", "rocky9.3", []string{"BaseOS=BaseOS"}, []string{"aarch64"}, 0},
	}
	for name, w := range cases {
		t.Run(name, func(t *testing.T) {
			ti := readTreeinfo(t, name)
			if ti.Family != w.family || ti.Version != w.version || ti.Arch != w.arch || ti.Stage2 != w.stage2 {
				t.Errorf("got family %q version %q arch %q stage2 %q", ti.Family, ti.Version, ti.Arch, ti.Stage2)
			}
			var vs []string
			for _, v := range ti.Variants {
				vs = append(vs, v.ID+"="+v.Repository)
			}
			if !slices.Equal(vs, w.variants) {
				t.Errorf("variants %v, want %v", vs, w.variants)
			}
			var ps []string
			for p, im := range ti.Images {
				ps = append(ps, p)
				if im.Kernel == "" || im.Initrd == "" {
					t.Errorf("[images-%s]: kernel %q initrd %q", p, im.Kernel, im.Initrd)
				}
			}
			slices.Sort(ps)
			if !slices.Equal(ps, w.platforms) {
				t.Errorf("platforms %v, want %v", ps, w.platforms)
			}
			if len(ti.Checksums) != w.checksums {
				t.Errorf("%d checksums, want %d", len(ti.Checksums), w.checksums)
			}
			for p, c := range ti.Checksums {
				if n := digestSizes[c.Algorithm]; n != len(c.Sum) {
					t.Errorf("%s: %s with %d bytes", p, c.Algorithm, len(c.Sum))
				}
			}
			rel, err := ReleaseName(ti.Family, ti.Short, ti.Version)
			if err != nil || rel != w.release {
				t.Errorf("release %q, %v; want %q", rel, err, w.release)
			}
		})
	}
}

func TestParseTreeinfoRejects(t *testing.T) {
	cases := map[string]struct{ in, want string }{
		"escape kernel":    {"[general]\nfamily=CentOS\n[images-x86_64]\nkernel = ../../../etc/passwd\n", "line 4: [images-x86_64] kernel"},
		"absolute stage2":  {"[general]\n[stage2]\nmainimage = /etc/shadow\n", "not a path inside the tree"},
		"escape checksum":  {"[general]\n[checksums]\n../x = sha256:00\n", "not a path inside the tree"},
		"bad hex":          {"[general]\n[checksums]\na = sha256:zz\n", "not hexadecimal"},
		"short sha256":     {"[general]\n[checksums]\na = sha256:0011\n", "has 32 bytes, not 2"},
		"no algorithm":     {"[general]\n[checksums]\na = 0011\n", "ALGORITHM:HEX"},
		"no section":       {"family = CentOS\n", "before any [section]"},
		"garbage line":     {"[general]\nthis is not ini\n", "line 2"},
		"unknown sections": {"[foo]\na=b\n", "not a .treeinfo"},
		"duplicate key":    {"[general]\nfamily=a\nfamily=b\n", "set twice"},
		"duplicate sect":   {"[general]\n[GENERAL]\n", "appears twice"},
		"bad header":       {"[general\n", "bad section header"},
		"stray indent":     {"[general]\n  x\n", "continues no key"},
		"escape repo":      {"[general]\n[variant-x]\nrepository = ..\n", "not a path inside the tree"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := ParseTreeinfo([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err %v, want it to contain %q", err, c.want)
			}
		})
	}
}

func TestParseTreeinfoSyntax(t *testing.T) {
	in := "\ufeff# comment\r\n[General]\r\nFamily: CentOS\r\nversion = 6.10\r\nname = long\r\n  continued\r\n[checksums]\r\nImages/PXE = MD5:" + strings.Repeat("ab", 16) + "\r\n"
	ti, err := ParseTreeinfo([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if ti.Family != "CentOS" || ti.Version != "6.10" {
		t.Errorf("family %q version %q", ti.Family, ti.Version)
	}
	c, ok := ti.Checksums["Images/PXE"]
	if !ok || c.Algorithm != "md5" {
		t.Errorf("checksum keys keep their case (they are paths): %v", ti.Checksums)
	}
}

func TestReleaseName(t *testing.T) {
	cases := []struct{ family, short, version, want string }{
		{"CentOS", "", "7.2", "centos7.2"},
		{"CentOS", "", "7.2.1511", "centos7.2"},
		{"Red Hat Enterprise Linux", "RHEL", "9.4", "rhel9.4"},
		{"Fedora", "Fedora", "40", "fedora40"},
		{"AlmaLinux", "AlmaLinux", "9.4", "alma9.4"},
		{"CentOS Stream", "CentOS-Stream", "9", "centos9"},
		{"Some Distro", "RHEL", "8", "rhel8"},
	}
	for _, c := range cases {
		got, err := ReleaseName(c.family, c.short, c.version)
		if err != nil || got != c.want {
			t.Errorf("ReleaseName(%q, %q, %q) = %q, %v; want %q", c.family, c.short, c.version, got, err, c.want)
		}
	}
	for _, c := range [][3]string{{"Debian", "", "12"}, {"Fedora", "", "Rawhide"}, {"", "", "9"}} {
		if got, err := ReleaseName(c[0], c[1], c[2]); err == nil {
			t.Errorf("ReleaseName(%q, %q, %q) = %q, want an error", c[0], c[1], c[2], got)
		}
	}
}

func TestResolveLayout(t *testing.T) {
	tree := func(paths ...string) func(string) bool {
		return func(p string) bool { return slices.Contains(paths, p) }
	}
	full := tree("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img", "images/install.img",
		"AppStream/repodata/repomd.xml", "BaseOS/repodata/repomd.xml")

	l, err := ResolveLayout(readTreeinfo(t, "rhel9.4.treeinfo"), full, "")
	if err != nil {
		t.Fatal(err)
	}
	if l.Arch != "x86_64" || l.Kernel != "images/pxeboot/vmlinuz" || !slices.Equal(l.Initrds, []string{"images/pxeboot/initrd.img"}) ||
		l.Stage2 != "images/install.img" || !slices.Equal(l.Repos, []string{"AppStream", "BaseOS"}) || l.Release != "rhel9.4" {
		t.Errorf("layout %+v", l)
	}
	if _, err := ResolveLayout(readTreeinfo(t, "rhel9.4.treeinfo"), full, "ppc64le"); err == nil || !strings.Contains(err.Error(), "no [images-ppc64le] (it has x86_64, xen)") {
		t.Errorf("unknown arch: %v", err)
	}
	if _, err := ResolveLayout(readTreeinfo(t, "rhel9.4.treeinfo"), tree("images/pxeboot/initrd.img"), ""); err == nil || !strings.Contains(err.Error(), "no kernel") {
		t.Errorf("missing kernel: %v", err)
	}
	if _, err := ResolveLayout(readTreeinfo(t, "centos7.2.treeinfo"), tree("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"), ""); err == nil || !strings.Contains(err.Error(), "LiveOS/squashfs.img") {
		t.Errorf("missing stage2: %v", err)
	}
	l, err = ResolveLayout(readTreeinfo(t, "aarch64-only.treeinfo"), tree("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img", "images/install.img"), "")
	if err != nil || l.Arch != "aarch64" || len(l.Repos) != 0 || len(l.Warnings) != 1 {
		t.Errorf("aarch64: %+v, %v", l, err)
	}

	// No .treeinfo: the standard layout.
	l, err = ResolveLayout(nil, tree("images/pxeboot/vmlinuz", "images/pxeboot/initrd.img", "LiveOS/squashfs.img", "repodata/repomd.xml"), "")
	if err != nil || l.Kernel != "images/pxeboot/vmlinuz" || l.Stage2 != "LiveOS/squashfs.img" || !slices.Equal(l.Repos, []string{"."}) {
		t.Errorf("fallback: %+v, %v", l, err)
	}
	l, err = ResolveLayout(nil, tree("isolinux/vmlinuz", "isolinux/initrd.img"), "")
	if err != nil || l.Kernel != "isolinux/vmlinuz" || l.Stage2 != "" {
		t.Errorf("isolinux fallback: %+v, %v", l, err)
	}
	if _, err := ResolveLayout(nil, tree("images/pxeboot/vmlinuz"), ""); err == nil || !strings.Contains(err.Error(), "no kernel") {
		t.Errorf("fallback without initrd: %v", err)
	}
}

// FuzzTreeinfo checks that no input makes the parser panic, and that
// whatever it accepts holds only paths that stay inside the tree.
func FuzzTreeinfo(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/treeinfo/*.treeinfo")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("[general]\nfamily = CentOS\n[images-x86_64]\nkernel = ../vmlinuz\n"))
	f.Add([]byte("[general]\n[checksums]\na = sha256:00\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ti, err := ParseTreeinfo(data)
		if err != nil {
			return
		}
		var paths []string
		for _, im := range ti.Images {
			for _, p := range im.Files {
				paths = append(paths, p)
			}
		}
		for p := range ti.Checksums {
			paths = append(paths, p)
		}
		if ti.Stage2 != "" {
			paths = append(paths, ti.Stage2)
		}
		for _, p := range paths {
			if !treePath(p, false) {
				t.Fatalf("accepted path %q outside the tree", p)
			}
		}
		for _, v := range ti.Variants {
			if v.Repository != "" && !treePath(v.Repository, true) {
				t.Fatalf("accepted repository %q outside the tree", v.Repository)
			}
		}
		_, _ = ResolveLayout(ti, func(string) bool { return true }, "")
	})
}

// The Secure Boot pair is found under the media's names for the tree's
// arch, in either case (ISO 9660 without Rock Ridge upper-cases), and
// dropped with a warning when only half of it is there.
func TestLayoutFindsEFIPair(t *testing.T) {
	cases := []struct {
		arch       string
		files      []string
		shim, grub string
		warn       bool
	}{
		{"x86_64", []string{"EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/grubx64.efi"}, "EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/grubx64.efi", false},
		{"x86_64", []string{"EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/GRUBX64.EFI"}, "EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/GRUBX64.EFI", false},
		{"aarch64", []string{"EFI/BOOT/BOOTAA64.EFI", "EFI/BOOT/grubaa64.efi", "EFI/BOOT/BOOTX64.EFI"}, "EFI/BOOT/BOOTAA64.EFI", "EFI/BOOT/grubaa64.efi", false},
		{"x86_64", []string{"EFI/BOOT/BOOTX64.EFI"}, "", "", true},
		{"x86_64", nil, "", "", false},
	}
	for _, c := range cases {
		files := map[string]bool{"images/pxeboot/vmlinuz": true, "images/pxeboot/initrd.img": true}
		for _, f := range c.files {
			files[f] = true
		}
		l, err := ResolveLayout(nil, func(p string) bool { return files[p] }, c.arch)
		if err != nil {
			t.Fatal(err)
		}
		if l.Shim != c.shim || l.GRUB != c.grub || (len(l.Warnings) > 0) != c.warn {
			t.Errorf("%s %v: shim %q grub %q warnings %v", c.arch, c.files, l.Shim, l.GRUB, l.Warnings)
		}
	}
}
