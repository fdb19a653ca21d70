package kickstart

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a kickstart syntax version, one of the releases kickstand
// installs. The zero value is not a valid version.
type Version int

// The releases kickstand knows, in pykickstart's handler naming.
const (
	RHEL6 Version = iota + 1
	RHEL7
	RHEL8
	RHEL9
	RHEL10
	F40
)

// Versions lists every supported version, oldest first.
var allVersions = [...]Version{RHEL6, RHEL7, RHEL8, RHEL9, RHEL10, F40}

// Versions returns every supported version, oldest first.
func Versions() []Version { return append([]Version(nil), allVersions[:]...) }

func (v Version) String() string {
	switch v {
	case RHEL6:
		return "RHEL6"
	case RHEL7:
		return "RHEL7"
	case RHEL8:
		return "RHEL8"
	case RHEL9:
		return "RHEL9"
	case RHEL10:
		return "RHEL10"
	case F40:
		return "F40"
	}
	return fmt.Sprintf("Version(%d)", int(v))
}

// isRHEL distinguishes the RHEL branch from Fedora where pykickstart does.
func (v Version) isRHEL() bool { return v >= RHEL6 && v <= RHEL10 }

// atLeastRHEL reports whether v is a RHEL release at or after r.
func (v Version) atLeastRHEL(r Version) bool { return v.isRHEL() && v >= r }

func (v Version) tables() (cmds, secs map[string]*cmdSpec) {
	t := specTables[v]
	return t.cmds, t.secs
}

var releaseRe = regexp.MustCompile(`^([a-z][a-z-]*?)[-_ ]?(\d+)(?:[._-].*)?$`)

// ParseVersion maps a release string to the kickstart version that
// validates it. It accepts pykickstart names (RHEL9, F40) and the names
// hosts and profiles use: rhel7.2, centos7, rocky9, almalinux8.10,
// fedora40, el9. Fedora 40 is the only Fedora table kickstand carries;
// other Fedora releases are refused rather than checked against the wrong
// rules.
func ParseVersion(s string) (Version, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	m := releaseRe.FindStringSubmatch(t)
	if m == nil {
		return 0, fmt.Errorf("kickstart version %q: not a release name", s)
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return 0, fmt.Errorf("kickstart version %q: %w", s, err)
	}
	switch m[1] {
	case "rhel", "el", "centos", "centos-stream", "centosstream", "stream", "rocky", "rockylinux",
		"alma", "almalinux", "ol", "oraclelinux", "oracle", "scientific", "sl", "redhat", "eurolinux", "navy", "cs":
		switch n {
		case 6:
			return RHEL6, nil
		case 7:
			return RHEL7, nil
		case 8:
			return RHEL8, nil
		case 9:
			return RHEL9, nil
		case 10:
			return RHEL10, nil
		}
	case "f", "fc", "fedora":
		if n == 40 {
			return F40, nil
		}
	}
	return 0, fmt.Errorf("kickstart version %q: unsupported release", s)
}
