package kickstart

import (
	"fmt"
	"slices"
	"strings"

	"github.com/kickstand/kickstand/internal/suggest"
)

// Hints name the likely mistake behind an error whose cause is common:
// a line continuation kickstart does not have, a byte order mark, a
// command or option another release has (or renamed), a typo. They never
// change a verdict; Problem.Hint carries them.

// optionRenames are options kickstart renamed. The old spelling is
// deprecated, then removed; releases before the rename only know it.
var optionRenames = []struct {
	cmd, old, new string
}{
	{"timezone", "--isUtc", "--utc"},                         // commands/timezone.py F32_Timezone
	{"%packages", "--instLangs", "--inst-langs"},             // sections.py PackageSection (F32 alias)
	{"%packages", "--excludeWeakdeps", "--exclude-weakdeps"}, // sections.py PackageSection (F32 alias)
}

// commandAdvice says what to do instead of a command a release removed.
var commandAdvice = map[string]string{
	"install":     "installing is the default; remove the line",
	"upgrade":     "upgrades are no longer done by the installer; remove the line",
	"auth":        "use authselect instead; pykickstart maps no authconfig options to it, so translate them by hand",
	"authconfig":  "use authselect instead; pykickstart maps no authconfig options to it, so translate them by hand",
	"method":      "name the install source with url, nfs, cdrom, harddrive or liveimg",
	"btrfs":       "use part or logvol with xfs or ext4",
	"vnc":         "use rdp for a remote graphical install",
	"%traceback":  "use %onerror",
	"autostep":    "remove the line",
	"device":      "remove the line; load an out-of-tree driver with driverdisk",
	"deviceprobe": "remove the line",
	"dmraid":      "remove the line",
	"multipath":   "remove the line",
	"monitor":     "remove the line",
	"module":      "remove the line",
	"nvdimm":      "remove the line",
}

// hint returns the hint for a problem found on node n; prev is the
// previous non-blank line of the same file.
func (l *linter) hint(p *Problem, n, prev *Node) string {
	if endsWithBackslash(n.Raw) {
		return "kickstart has no line continuation; join the lines"
	}
	if prev != nil && prev.Pos.Line == n.Pos.Line-1 && endsWithBackslash(prev.Raw) {
		return fmt.Sprintf("line %d ends with a backslash, but kickstart has no line continuation; join the lines", prev.Pos.Line)
	}
	switch p.kind {
	case kindUnknownCommand:
		if strings.HasPrefix(p.cmd, "\ufeff") {
			return "the file starts with a UTF-8 byte order mark; save it without one"
		}
		if rels := l.releasesWith(p.cmd, ""); rels != "" {
			return fmt.Sprintf("%s is a command of %s, not %v", p.cmd, rels, l.v)
		}
		if s := closest(p.cmd, keys(l.cmds)); s != "" {
			return "did you mean " + s + "?"
		}
	case kindRemovedCommand, kindDeprecatedCommand:
		if a, ok := commandAdvice[p.cmd]; ok {
			return a
		}
	case kindDeprecatedOption, kindUnknownOption:
		if p.kind == kindDeprecatedOption && !strings.HasPrefix(p.Message, "Ignoring deprecated option") {
			return "" // pykickstart's own message names the replacement
		}
		var hints []string
		seen := map[string]bool{}
		for _, w := range p.words {
			if seen[w] {
				continue
			}
			seen[w] = true
			if h := l.optionHint(p.cmd, w, p.kind == kindDeprecatedOption); h != "" {
				hints = append(hints, h)
			}
			if len(seen) == 8 {
				break // a hint for the first few is enough
			}
		}
		return strings.Join(hints, "; ")
	}
	return ""
}

// optionHint explains one option this release refuses or deprecates.
func (l *linter) optionHint(cmd, word string, deprecated bool) string {
	opt, _, _ := strings.Cut(word, "=")
	if !strings.HasPrefix(opt, "--") {
		return ""
	}
	if alias := l.renamed(cmd, opt); alias != "" {
		return fmt.Sprintf("%s is spelt %s in %v", opt, alias, l.v)
	}
	switch {
	case cmd == "timezone" && opt == "--ntpservers":
		return "name each NTP server on its own timesource --ntp-server line"
	case cmd == "timezone" && opt == "--nontp":
		return "use timesource --ntp-disable"
	case deprecated:
		return "remove " + opt
	}
	if rels := l.releasesWith(cmd, opt); rels != "" {
		return fmt.Sprintf("%s %s is in %s, not %v", cmd, opt, rels, l.v)
	}
	if spec := l.spec(cmd); spec != nil {
		var names []string
		for _, n := range spec.names {
			names = append(names, n.s)
		}
		if s := closest(opt, names); s != "" {
			return "did you mean " + s + "?"
		}
	}
	return ""
}

// renamed returns the spelling of opt this release accepts without a
// warning, if opt is one side of a rename.
func (l *linter) renamed(cmd, opt string) string {
	for _, r := range optionRenames {
		if r.cmd != cmd {
			continue
		}
		for _, alt := range [][2]string{{r.old, r.new}, {r.new, r.old}} {
			if alt[0] == opt && optionState(l.v, cmd, alt[1]) == optionOK {
				return alt[1]
			}
		}
	}
	return ""
}

func (l *linter) spec(cmd string) *cmdSpec {
	if strings.HasPrefix(cmd, "%") {
		return l.secs[cmd]
	}
	return l.cmds[cmd]
}

// releasesWith lists the releases that take a command (opt == "") or one
// of its options, usable and not deprecated.
func (l *linter) releasesWith(cmd, opt string) string {
	var rels []string
	for _, v := range Versions() {
		if v == l.v {
			continue
		}
		if opt == "" && commandUsable(v, cmd) || opt != "" && commandUsable(v, cmd) && optionState(v, cmd, opt) == optionOK {
			rels = append(rels, v.String())
		}
	}
	return strings.Join(rels, ", ")
}

// commandUsable: the release has the command and takes it without a
// deprecation.
func commandUsable(v Version, cmd string) bool {
	cmds, secs := v.tables()
	spec := cmds[cmd]
	if strings.HasPrefix(cmd, "%") {
		spec = secs[cmd]
	}
	if spec == nil || spec.style == styleRemoved || spec.style == styleDeprecated || spec.style == styleNoImpl {
		return false
	}
	switch {
	case spec.class == "commands/authconfig.py F28_Authconfig":
		return false // its parse() warns on every use
	case cmd == "%traceback":
		return v < RHEL9
	}
	return true
}

type optState uint8

const (
	optionUnknown optState = iota
	optionOK
	optionDeprecated
)

// optionState says how a release takes an option of a command, counting
// the deprecations pykickstart's parse() methods warn about.
func optionState(v Version, cmd, opt string) optState {
	cmds, secs := v.tables()
	spec := cmds[cmd]
	if strings.HasPrefix(cmd, "%") {
		spec = secs[cmd]
	}
	if spec == nil {
		return optionUnknown
	}
	i, ok := spec.lookup(opt)
	switch {
	case !ok:
		return optionUnknown
	case spec.acts[i].deprecated:
		return optionDeprecated
	}
	for _, d := range parseDeprecations {
		if d.cmd == cmd && d.opt == opt && d.in(v) {
			return optionDeprecated
		}
	}
	return optionOK
}

// parseDeprecations are the options a pykickstart parse() method warns
// about on top of argparse (checks.go raises the warnings).
var parseDeprecations = []struct {
	cmd, opt string
	in       func(Version) bool
}{
	// commands/timezone.py F32_Timezone, F33_Timezone (RHEL 9)
	{"timezone", "--isUtc", func(v Version) bool { return v == RHEL9 }},
	{"timezone", "--ntpservers", func(v Version) bool { return v == RHEL9 }},
	{"timezone", "--nontp", func(v Version) bool { return v == RHEL9 }},
	// sections.py PackageSection.handleHeader, before F40 (RHEL 9)
	{"%packages", "--instLangs", func(v Version) bool { return v == RHEL9 }},
	{"%packages", "--excludeWeakdeps", func(v Version) bool { return v == RHEL9 }},
}

func endsWithBackslash(raw string) bool {
	return strings.HasSuffix(strings.TrimRightFunc(raw, pySpace), `\`)
}

func keys(m map[string]*cmdSpec) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// closest returns the candidate within edit distance 2 of s (the nearest,
// then the first in sorted order), or "".
func closest(s string, candidates []string) string {
	if len(s) < 3 {
		return ""
	}
	return suggest.Closest(s, slices.Values(candidates), 2)
}
