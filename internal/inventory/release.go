package inventory

import (
	"fmt"
	"strconv"
	"strings"
)

// Release identifies the OS a distro installs. Installer behaviour (kernel
// command-line syntax, kickstart dialect, seed-000 races) is keyed on it, so it
// is parsed once here instead of being string-matched all over the code.
type Release struct {
	Family string // "rhel" or "fedora"
	Major  int
	Minor  int // -1 when the release names no minor version
}

// rhelAliases are rebuilds that follow RHEL's installer exactly.
var rhelAliases = map[string]bool{"rhel": true, "centos": true, "rocky": true, "alma": true, "almalinux": true, "oracle": true, "ol": true, "el": true}

// ParseRelease accepts names such as rhel6, rhel7.2, centos7.2, rocky9, fedora40.
func ParseRelease(s string) (Release, error) {
	in := strings.ToLower(strings.TrimSpace(s))
	i := strings.IndexAny(in, "0123456789")
	if i <= 0 {
		return Release{}, fmt.Errorf("release %q: want a family and a version, such as rhel7.2 or fedora40", s)
	}
	fam := strings.TrimSuffix(strings.TrimSuffix(in[:i], "-"), "_")
	switch {
	case rhelAliases[fam]:
		fam = "rhel"
	case fam == "fedora" || fam == "f":
		fam = "fedora"
	default:
		return Release{}, fmt.Errorf("release %q: unknown family %q (want rhel, centos, rocky, alma or fedora)", s, fam)
	}
	ver := in[i:]
	majS, minS, hasMinor := strings.Cut(ver, ".")
	maj, err := strconv.Atoi(majS)
	if err != nil || maj <= 0 {
		return Release{}, fmt.Errorf("release %q: bad major version %q", s, majS)
	}
	r := Release{Family: fam, Major: maj, Minor: -1}
	if hasMinor {
		min, err := strconv.Atoi(minS)
		if err != nil || min < 0 {
			return Release{}, fmt.Errorf("release %q: bad minor version %q", s, minS)
		}
		r.Minor = min
	}
	return r, nil
}

func (r Release) String() string {
	if r.Family == "" {
		return ""
	}
	if r.Minor >= 0 {
		return fmt.Sprintf("%s%d.%d", r.Family, r.Major, r.Minor)
	}
	return fmt.Sprintf("%s%d", r.Family, r.Major)
}

// Dracut reports whether stage 1 is dracut (EL7+, Fedora 17+), which decides
// between dracut's ip=/inst.* syntax and the legacy ks=/ksdevice= one. Mixing
// the two breaks boots (REFERENCE §4), so callers must branch on this only.
func (r Release) Dracut() bool {
	if r.Family == "fedora" {
		return r.Major >= 17
	}
	return r.Major >= 7
}

// AtMost reports whether r is the given major.minor or older. A release with no
// minor version is taken as the latest minor of its major, because "rhel7"
// installs today come from the last point release.
func (r Release) AtMost(major, minor int) bool {
	if r.Major != major {
		return r.Major < major
	}
	return r.Minor >= 0 && r.Minor <= minor
}
