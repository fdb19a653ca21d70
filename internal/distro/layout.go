package distro

import (
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Layout is where an install tree keeps what kickstand serves, resolved from
// its .treeinfo or, without one, from the layout every EL and Fedora tree
// has used since EL6.
type Layout struct {
	Arch    string
	Kernel  string   // tree-relative
	Initrds []string // tree-relative
	// Stage2 is the installer runtime image (LiveOS/squashfs.img or
	// images/install.img), "" when the tree has none.
	Stage2 string
	// Repos are tree-relative directories holding repodata/repomd.xml.
	Repos []string
	// Shim and GRUB are the media's Secure Boot pair (EFI/BOOT/BOOTX64.EFI
	// and grubx64.efi, or the aarch64 names), "" when the tree has none.
	Shim, GRUB string
	// Release is the kickstand release name derived from the .treeinfo
	// ("centos7.2", "rhel9.4", "fedora40"), "" when it cannot be.
	Release   string
	Checksums map[string]Checksum
	// Treeinfo is the parsed .treeinfo; nil means the fallback layout.
	Treeinfo *Treeinfo
	Warnings []string
}

// Fallback paths for trees without a .treeinfo, in order of preference.
var (
	fallbackBoot = [][2]string{
		{"images/pxeboot/vmlinuz", "images/pxeboot/initrd.img"},
		{"isolinux/vmlinuz", "isolinux/initrd.img"},
	}
	fallbackStage2 = []string{"LiveOS/squashfs.img", "images/install.img"}
)

// ResolveLayout works out a tree's layout. has reports whether the tree
// holds a regular file at a tree-relative path; arch, when not empty,
// chooses the [images-ARCH] section. A tree whose kernel or initrd is not
// there is refused, naming the missing file.
func ResolveLayout(ti *Treeinfo, has func(string) bool, arch string) (*Layout, error) {
	l := &Layout{Treeinfo: ti, Arch: arch, Checksums: map[string]Checksum{}}
	if ti == nil {
		err := l.fallback(has)
		l.findEFI(has)
		return l, err
	}
	for p, c := range ti.Checksums {
		l.Checksums[p] = c
	}
	if ti.Family != "" || ti.Short != "" {
		if r, err := ReleaseName(ti.Family, ti.Short, ti.Version); err == nil {
			l.Release = r
		} else {
			l.Warnings = append(l.Warnings, err.Error())
		}
	}
	if len(ti.Images) == 0 {
		l.Warnings = append(l.Warnings, ".treeinfo has no [images-*] section; using images/pxeboot/")
		if l.Arch == "" {
			l.Arch = ti.Arch
		}
		if err := l.fallback(has); err != nil {
			return nil, err
		}
		l.findEFI(has)
		return l, nil
	}
	platform, err := pickPlatform(ti, arch)
	if err != nil {
		return nil, err
	}
	l.Arch = platform
	defer l.findEFI(has)
	im := ti.Images[platform]
	switch {
	case im.Kernel == "":
		return nil, fmt.Errorf("no kernel: .treeinfo [images-%s] has no kernel key", platform)
	case im.Initrd == "":
		return nil, fmt.Errorf("no initrd: .treeinfo [images-%s] has no initrd key", platform)
	case !has(im.Kernel):
		return nil, fmt.Errorf("no kernel: .treeinfo [images-%s] names %s, which is not in the tree", platform, im.Kernel)
	case !has(im.Initrd):
		return nil, fmt.Errorf("no initrd: .treeinfo [images-%s] names %s, which is not in the tree", platform, im.Initrd)
	}
	l.Kernel, l.Initrds = im.Kernel, []string{im.Initrd}
	if ti.Stage2 != "" {
		if !has(ti.Stage2) {
			return nil, fmt.Errorf("no stage2: .treeinfo [stage2] names %s, which is not in the tree", ti.Stage2)
		}
		l.Stage2 = ti.Stage2
	} else {
		l.Stage2 = firstPresent(fallbackStage2, has)
	}
	for _, v := range ti.Variants {
		if v.Repository == "" || slices.Contains(l.Repos, v.Repository) {
			continue
		}
		if has(path.Join(v.Repository, "repodata/repomd.xml")) {
			l.Repos = append(l.Repos, v.Repository)
		} else {
			l.Warnings = append(l.Warnings, fmt.Sprintf("variant %s: %s has no repodata/repomd.xml", v.ID, v.Repository))
		}
	}
	if len(ti.Variants) == 0 && has("repodata/repomd.xml") {
		l.Repos = []string{"."}
	}
	return l, nil
}

// pickPlatform chooses the [images-*] section: the one asked for, else the
// tree's own arch, else the only one that is not the xen platform.
func pickPlatform(ti *Treeinfo, arch string) (string, error) {
	var have []string
	for p := range ti.Images {
		have = append(have, p)
	}
	slices.Sort(have)
	if arch != "" {
		if _, ok := ti.Images[arch]; !ok {
			return "", fmt.Errorf("no kernel for --arch %s: .treeinfo has no [images-%s] (it has %s)", arch, arch, strings.Join(have, ", "))
		}
		return arch, nil
	}
	if _, ok := ti.Images[ti.Arch]; ok && ti.Arch != "" {
		return ti.Arch, nil
	}
	var arches []string
	for _, p := range have {
		if p != "xen" {
			arches = append(arches, p)
		}
	}
	if len(arches) == 1 {
		return arches[0], nil
	}
	return "", fmt.Errorf(".treeinfo has images for %s: choose one with --arch", strings.Join(have, ", "))
}

func (l *Layout) fallback(has func(string) bool) error {
	for _, b := range fallbackBoot {
		if has(b[0]) && has(b[1]) {
			l.Kernel, l.Initrds = b[0], []string{b[1]}
			break
		}
	}
	if l.Kernel == "" {
		return fmt.Errorf("no kernel: no .treeinfo, and neither %s nor %s (with its initrd.img) is in the tree", fallbackBoot[0][0], fallbackBoot[1][0])
	}
	l.Stage2 = firstPresent(fallbackStage2, has)
	if has("repodata/repomd.xml") {
		l.Repos = []string{"."}
	}
	return nil
}

// efiNames are where install media keep the Secure Boot pair, by arch:
// EFI/BOOT/BOOT<arch>.EFI is the shim under its removable-media name.
var efiNames = map[string][2][]string{
	"x86_64":  {{"EFI/BOOT/BOOTX64.EFI", "EFI/BOOT/shimx64.efi"}, {"EFI/BOOT/grubx64.efi"}},
	"aarch64": {{"EFI/BOOT/BOOTAA64.EFI", "EFI/BOOT/shimaa64.efi"}, {"EFI/BOOT/grubaa64.efi"}},
}

// findEFI records the tree's shim and GRUB for its arch (x86_64 when it
// does not say). ISO 9660 without Rock Ridge upper-cases names, so both
// spellings are tried.
func (l *Layout) findEFI(has func(string) bool) {
	arch := inventory.CPUName(l.Arch)
	if arch == "" {
		arch = "x86_64"
	}
	names, ok := efiNames[arch]
	if !ok {
		return
	}
	find := func(cands []string) string {
		for _, c := range cands {
			for _, p := range []string{c, strings.ToUpper(c)} {
				if has(p) {
					return p
				}
			}
		}
		return ""
	}
	l.Shim, l.GRUB = find(names[0]), find(names[1])
	if (l.Shim == "") != (l.GRUB == "") {
		l.Warnings = append(l.Warnings, fmt.Sprintf("EFI/BOOT has a shim or a GRUB but not both (shim %q, grub %q): Secure Boot profiles get Debian's pair instead", l.Shim, l.GRUB))
		l.Shim, l.GRUB = "", ""
	}
}

func firstPresent(paths []string, has func(string) bool) string {
	for _, p := range paths {
		if has(p) {
			return p
		}
	}
	return ""
}

// families maps .treeinfo family or short names (lower case, spaces
// removed) to the family prefix of kickstand release names.
var families = map[string]string{
	"redhatenterpriselinux": "rhel", "rhel": "rhel",
	"centos": "centos", "centoslinux": "centos", "centosstream": "centos",
	"fedora": "fedora",
	"rocky":  "rocky", "rockylinux": "rocky",
	"almalinux": "alma", "alma": "alma",
	"oraclelinux": "ol", "ol": "ol",
}

var versionRe = regexp.MustCompile(`^(\d+)(\.\d+)?`)

// ReleaseName derives a kickstand release name from a .treeinfo's family
// (or short name) and version: "CentOS" 7.2 -> centos7.2, "Red Hat
// Enterprise Linux" 9.4 -> rhel9.4, Fedora 40 -> fedora40. Anything else
// is an error that asks for --release.
func ReleaseName(family, short, version string) (string, error) {
	fam := ""
	for _, n := range []string{family, short} {
		if f, ok := families[strings.ToLower(strings.ReplaceAll(n, " ", ""))]; ok {
			fam = f
			break
		}
	}
	if fam == "" {
		return "", fmt.Errorf(".treeinfo family %q is not one kickstand knows: pass --release", family)
	}
	v := versionRe.FindString(strings.TrimSpace(version))
	if v == "" {
		return "", fmt.Errorf(".treeinfo version %q of %s has no number: pass --release", version, family)
	}
	name := fam + v
	if _, err := inventory.ParseRelease(name); err != nil {
		return "", fmt.Errorf(".treeinfo %s %s: %w: pass --release", family, version, err)
	}
	return name, nil
}
