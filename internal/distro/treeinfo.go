package distro

import (
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"
)

// MaxTreeinfoSize bounds what is read of a .treeinfo. Real ones are a few
// KiB; anything far larger is not a treeinfo and is refused rather than
// parsed into memory.
const MaxTreeinfoSize = 1 << 20

// Treeinfo is what kickstand uses of an install tree's .treeinfo, as written
// by productmd (RHEL 7.x+, Fedora) or by the older anaconda/pungi writers
// (CentOS 6/7), which have only a [general] section.
type Treeinfo struct {
	Family  string // release name: "CentOS", "Red Hat Enterprise Linux", "Fedora"
	Short   string // short name when given: "RHEL", "Fedora"
	Version string // "7", "6.3", "9.4", "40"
	Arch    string // the tree's architecture
	// Images maps a platform ("x86_64", "xen", "aarch64") to its boot images.
	Images map[string]Images
	// Stage2 is the installer runtime image, e.g. LiveOS/squashfs.img or
	// images/install.img ("" when the tree names none).
	Stage2   string
	Variants []Variant
	// Checksums maps a tree-relative path to its expected digest.
	Checksums map[string]Checksum
}

// Images are one platform's boot images.
type Images struct {
	Kernel string
	Initrd string
	// Files holds every key of the section, kernel and initrd included
	// (efiboot.img, boot.iso, upgrade, ...).
	Files map[string]string
}

// Variant is one repository-bearing part of a tree (BaseOS, AppStream,
// Server, ...).
type Variant struct {
	ID         string
	Name       string
	Type       string
	Repository string // tree-relative directory holding repodata/, "." for the root
	Packages   string
}

// Checksum is an expected digest from [checksums].
type Checksum struct {
	Algorithm string // md5, sha1, sha224, sha256, sha384, sha512, or something kickstand cannot check
	Sum       []byte
}

func (c Checksum) String() string { return c.Algorithm + ":" + hex.EncodeToString(c.Sum) }

// digestSizes are the algorithms kickstand can verify, with their sizes, so a
// digest of the wrong length is caught when parsing rather than reported as
// a mismatch of the file.
var digestSizes = map[string]int{"md5": 16, "sha1": 20, "sha224": 28, "sha256": 32, "sha384": 48, "sha512": 64}

// ParseTreeinfo parses a .treeinfo. It is strict about the syntax and about
// paths: every path must stay inside the tree, since the importer opens what
// the file names.
func ParseTreeinfo(data []byte) (*Treeinfo, error) {
	if len(data) > MaxTreeinfoSize {
		return nil, fmt.Errorf("treeinfo: %d bytes, more than the %d a treeinfo can be", len(data), MaxTreeinfoSize)
	}
	f, err := parseINI(data)
	if err != nil {
		return nil, err
	}
	known := false
	for _, s := range []string{"general", "release", "header", "tree", "product"} {
		if f.section(s) != nil {
			known = true
		}
	}
	if !known {
		return nil, fmt.Errorf("treeinfo: none of [general], [release], [header] or [tree]: not a .treeinfo")
	}
	ti := &Treeinfo{Images: map[string]Images{}, Checksums: map[string]Checksum{}}
	// productmd writes [release] (and [product] in its 1.0 format) and also
	// a compatibility [general]; older writers have only [general].
	ti.Family = f.first("release.name", "product.name", "general.family")
	ti.Short = f.first("release.short", "product.short")
	ti.Version = f.first("release.version", "product.version", "general.version")
	ti.Arch = f.first("tree.arch", "general.arch")

	var errs []string
	bad := func(s *section, kv keyValue, what string) {
		errs = append(errs, fmt.Sprintf("treeinfo line %d: [%s] %s = %q: %s", kv.line, s.name, kv.key, kv.value, what))
	}
	for _, s := range f.sections {
		switch {
		case strings.HasPrefix(s.name, "images-"):
			im := Images{Files: map[string]string{}}
			for _, kv := range s.keys {
				if !treePath(kv.value, false) {
					bad(s, kv, "not a path inside the tree")
					continue
				}
				im.Files[kv.key] = kv.value
				switch kv.key {
				case "kernel":
					im.Kernel = kv.value
				case "initrd":
					im.Initrd = kv.value
				}
			}
			ti.Images[strings.TrimPrefix(s.name, "images-")] = im
		case s.name == "stage2":
			for _, kv := range s.keys {
				if kv.key != "mainimage" && kv.key != "instimage" {
					continue
				}
				if !treePath(kv.value, false) {
					bad(s, kv, "not a path inside the tree")
				} else if ti.Stage2 == "" || kv.key == "mainimage" {
					ti.Stage2 = kv.value
				}
			}
		case s.name == "checksums":
			for _, kv := range s.keys {
				if !treePath(kv.key, false) {
					bad(s, kv, "not a path inside the tree")
					continue
				}
				c, err := parseChecksum(kv.value)
				if err != nil {
					bad(s, kv, err.Error())
					continue
				}
				ti.Checksums[kv.key] = c
			}
		case strings.HasPrefix(s.name, "variant-"):
			v := Variant{ID: strings.TrimPrefix(s.name, "variant-")}
			for _, kv := range s.keys {
				switch kv.key {
				case "id":
					v.ID = kv.value
				case "name":
					v.Name = kv.value
				case "type":
					v.Type = kv.value
				case "repository", "packages":
					if !treePath(kv.value, true) {
						bad(s, kv, "not a path inside the tree")
						continue
					}
					if kv.key == "repository" {
						v.Repository = kv.value
					} else {
						v.Packages = kv.value
					}
				}
			}
			ti.Variants = append(ti.Variants, v)
		}
	}
	// Trees from before productmd name their one repository in [general].
	if len(ti.Variants) == 0 {
		if g := f.section("general"); g != nil {
			if repo := g.get("repository"); repo != "" {
				if !treePath(repo, true) {
					errs = append(errs, fmt.Sprintf("treeinfo: [general] repository = %q: not a path inside the tree", repo))
				} else {
					ti.Variants = append(ti.Variants, Variant{ID: g.get("variant"), Repository: repo, Packages: g.get("packagedir")})
				}
			}
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	slices.SortFunc(ti.Variants, func(a, b Variant) int { return strings.Compare(a.ID, b.ID) })
	return ti, nil
}

func parseChecksum(s string) (Checksum, error) {
	algo, sum, ok := strings.Cut(s, ":")
	algo = strings.ToLower(strings.TrimSpace(algo))
	if !ok || algo == "" {
		return Checksum{}, fmt.Errorf("want ALGORITHM:HEX, such as sha256:...")
	}
	b, err := hex.DecodeString(strings.TrimSpace(sum))
	if err != nil || len(b) == 0 {
		return Checksum{}, fmt.Errorf("digest is not hexadecimal")
	}
	if n, known := digestSizes[algo]; known && n != len(b) {
		return Checksum{}, fmt.Errorf("a %s digest has %d bytes, not %d", algo, n, len(b))
	}
	return Checksum{Algorithm: algo, Sum: b}, nil
}

// treePath reports whether p is a clean relative path that stays inside the
// tree. dot allows "." (the tree root), which repositories may be.
func treePath(p string, dot bool) bool {
	if p == "." {
		return dot
	}
	if p == "" || strings.ContainsAny(p, "\x00\\") || path.IsAbs(p) || path.Clean(p) != p {
		return false
	}
	return p != ".." && !strings.HasPrefix(p, "../")
}

// iniFile is a .treeinfo as Python's configparser reads it: [sections],
// "key = value" or "key: value", full-line # and ; comments, and indented
// continuation lines. Section and key names are case-insensitive as
// configparser makes them, except in [checksums], whose keys are paths.
type iniFile struct{ sections []*section }

type section struct {
	name string
	line int
	keys []keyValue
}

type keyValue struct {
	key, value string
	line       int
}

func parseINI(data []byte) (*iniFile, error) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	f := &iniFile{}
	var cur *section
	var last *keyValue
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimRight(line, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "" || trimmed[0] == '#' || trimmed[0] == ';':
			last = nil // configparser ends a continuation at a blank line
			continue
		case line[0] == ' ' || line[0] == '\t':
			if last == nil {
				return nil, fmt.Errorf("treeinfo line %d: indented line continues no key", n)
			}
			last.value += "\n" + trimmed
			continue
		case trimmed[0] == '[':
			if !strings.HasSuffix(trimmed, "]") || len(trimmed) < 3 {
				return nil, fmt.Errorf("treeinfo line %d: bad section header %q", n, trimmed)
			}
			name := strings.ToLower(strings.TrimSpace(trimmed[1 : len(trimmed)-1]))
			if f.section(name) != nil {
				return nil, fmt.Errorf("treeinfo line %d: section [%s] appears twice", n, name)
			}
			cur = &section{name: name, line: n}
			f.sections = append(f.sections, cur)
			last = nil
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("treeinfo line %d: %q comes before any [section]", n, trimmed)
		}
		sep := strings.IndexAny(trimmed, "=:")
		if sep <= 0 {
			return nil, fmt.Errorf("treeinfo line %d: want \"key = value\", got %q", n, trimmed)
		}
		key := strings.TrimSpace(trimmed[:sep])
		if cur.name != "checksums" {
			key = strings.ToLower(key)
		}
		kv := keyValue{key: key, value: strings.TrimSpace(trimmed[sep+1:]), line: n}
		if j := slices.IndexFunc(cur.keys, func(x keyValue) bool { return x.key == key }); j >= 0 {
			return nil, fmt.Errorf("treeinfo line %d: [%s] %s set twice (first on line %d)", n, cur.name, key, cur.keys[j].line)
		}
		cur.keys = append(cur.keys, kv)
		last = &cur.keys[len(cur.keys)-1]
	}
	return f, nil
}

func (f *iniFile) section(name string) *section {
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	return nil
}

// first returns the first non-empty value among "section.key" names.
func (f *iniFile) first(names ...string) string {
	for _, n := range names {
		sec, key, _ := strings.Cut(n, ".")
		if s := f.section(sec); s != nil {
			if v := s.get(key); v != "" {
				return v
			}
		}
	}
	return ""
}

func (s *section) get(key string) string {
	for _, kv := range s.keys {
		if kv.key == key {
			return kv.value
		}
	}
	return ""
}
