package kickstart

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// commandsTxt is kickstand's own per-release description of every command
// and section header (format documented at its top). Keeping it as data
// rather than Go literals makes a release's change one line: "since=",
// "removed=", "deprecated=".
//
//go:embed commands.txt
var commandsTxt string

// lineage is the order kickstart syntax evolved in: pykickstart's RHEL 10
// handler branched from Fedora after F40, so "since rhel9" includes F40.
var lineage = [...]Version{RHEL6, RHEL7, RHEL8, RHEL9, F40, RHEL10}

var releaseNames = map[string]Version{
	"rhel6": RHEL6, "rhel7": RHEL7, "rhel8": RHEL8, "rhel9": RHEL9, "f40": F40, "rhel10": RHEL10,
}

// relSet is a set of releases, one bit per Version.
type relSet uint16

func (s relSet) has(v Version) bool { return s&(1<<uint(v)) != 0 }

func lineageIndex(v Version) int {
	for i, l := range lineage {
		if l == v {
			return i
		}
	}
	return -1
}

// fromIndex is every release from lineage[i] on.
func fromIndex(i int) relSet {
	var s relSet
	for ; i < len(lineage); i++ {
		s |= 1 << uint(lineage[i])
	}
	return s
}

func parseRelease(s string) (int, error) {
	v, ok := releaseNames[s]
	if !ok {
		return 0, fmt.Errorf("unknown release %q", s)
	}
	return lineageIndex(v), nil
}

// parseRelSet reads "all", "rhel7", "rhel7-rhel9", "rhel8-", "-rhel9" and
// comma lists of those.
func parseRelSet(s string) (relSet, error) {
	if s == "all" {
		return fromIndex(0), nil
	}
	var out relSet
	for _, item := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(item, "-")
		a, b := 0, len(lineage)-1
		var err error
		if lo != "" {
			if a, err = parseRelease(lo); err != nil {
				return 0, err
			}
		}
		if !isRange {
			b = a
		} else if hi != "" {
			if b, err = parseRelease(hi); err != nil {
				return 0, err
			}
		}
		if a > b {
			return 0, fmt.Errorf("empty release range %q", item)
		}
		out |= fromIndex(a) &^ fromIndex(b+1)
	}
	return out, nil
}

// enumType is a pykickstart option type callback that maps a fixed set of
// names to constants and raises its own message for anything else.
type enumType struct {
	values []string
	msg    string
	upper  bool // the callback upper-cases the value before the lookup
}

var enumTypes = map[string]enumType{
	// commands/raid.py FC3_Raid._level_cb over levelMap (RAID0..RAID6,
	// RAID10 and their bare numbers).
	"raidlevel": {values: []string{"0", "1", "10", "4", "5", "6", "RAID0", "RAID1", "RAID10", "RAID4", "RAID5", "RAID6"}, msg: "Invalid raid level: %s", upper: true},
	// commands/autopart.py F20_AutoPart._type_cb over typeMap.
	"autoparttype": {values: []string{"btrfs", "lvm", "partition", "plain", "thinp"}, msg: "Invalid autopart type: %s"},
	// commands/btrfs.py F17_BTRFS level_cb over levelMap.
	"btrfslevel": {values: []string{"0", "1", "10", "raid0", "raid1", "raid10", "single"}, msg: "Invalid btrfs level: %s"},
	// commands/snapshot.py F26_Snapshot._when_cb over whenMap.
	"snapshotwhen": {values: []string{"post-install", "pre-install"}, msg: "Invalid parameter to --when= argument: %s"},
}

var styleNames = map[string]cmdStyle{
	"strict": styleStrict, "known": styleKnown, "raw": styleRaw, "noargs": styleNoArgs,
	"noimpl": styleNoImpl, "deprecated": styleDeprecated, "removed": styleRemoved,
}

// releaseTable holds one release's commands and section headers.
type releaseTable struct {
	cmds, secs map[string]*cmdSpec
}

// specTables is commands.txt, loaded once; nothing writes to it after.
var specTables = mustLoadTables(commandsTxt)

func mustLoadTables(src string) map[Version]releaseTable {
	t, err := loadTables(src)
	if err != nil {
		panic("kickstart: commands.txt: " + err.Error())
	}
	return t
}

type tableClass struct {
	set       relSet
	class     string
	style     cmdStyle
	conflicts []string
}

type tableRow struct {
	set relSet
	// deprecated is where argparse marks the option deprecated.
	deprecated relSet
	act        act
	// opts are the option strings (none for a positional).
	opts []string
}

type tableBlock struct {
	line    int
	section bool
	names   []string
	classes []tableClass
	rows    []tableRow
}

func loadTables(src string) (map[Version]releaseTable, error) {
	var blocks []*tableBlock
	var cur *tableBlock
	for i, line := range strings.Split(src, "\n") {
		ln := i + 1
		toks, _, err := shlexSplit(line, true)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", ln, err)
		}
		words := tokenValues(toks)
		if len(words) == 0 {
			continue
		}
		switch {
		case words[0] == "command" || words[0] == "section":
			if len(words) < 2 {
				return nil, fmt.Errorf("line %d: %s without a name", ln, words[0])
			}
			cur = &tableBlock{line: ln, section: words[0] == "section", names: words[1:]}
			blocks = append(blocks, cur)
		case cur == nil:
			return nil, fmt.Errorf("line %d: %q outside a command", ln, words[0])
		case words[0] == "class":
			c, err := parseClassLine(words, cur.section)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", ln, err)
			}
			cur.classes = append(cur.classes, c)
		default:
			r, err := parseRow(words)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", ln, err)
			}
			cur.rows = append(cur.rows, r)
		}
	}
	out := map[Version]releaseTable{}
	for _, v := range lineage {
		out[v] = releaseTable{cmds: map[string]*cmdSpec{}, secs: map[string]*cmdSpec{}}
	}
	for _, b := range blocks {
		if err := b.build(out); err != nil {
			return nil, fmt.Errorf("%s (line %d): %w", b.names[0], b.line, err)
		}
	}
	return out, nil
}

func parseClassLine(words []string, section bool) (tableClass, error) {
	if len(words) < 4 {
		return tableClass{}, fmt.Errorf("want: class SET FILE:CLASS STYLE")
	}
	set, err := parseRelSet(words[1])
	if err != nil {
		return tableClass{}, err
	}
	file, class, ok := strings.Cut(words[2], ":")
	if !ok {
		return tableClass{}, fmt.Errorf("class %q: want FILE:CLASS", words[2])
	}
	style, ok := styleNames[words[3]]
	if !ok {
		return tableClass{}, fmt.Errorf("unknown style %q", words[3])
	}
	c := tableClass{set: set, style: style}
	if section {
		c.class = file + ".py " + class
	} else {
		c.class = "commands/" + file + ".py " + class
	}
	for _, w := range words[4:] {
		v, ok := strings.CutPrefix(w, "conflicts=")
		if !ok {
			return tableClass{}, fmt.Errorf("unknown class attribute %q", w)
		}
		c.conflicts = strings.Split(v, ",")
	}
	return c, nil
}

func parseRow(words []string) (tableRow, error) {
	if len(words) < 2 {
		return tableRow{}, fmt.Errorf("%q: want NAME ARITY", words[0])
	}
	var r tableRow
	a := &r.act
	if d, ok := strings.CutPrefix(words[0], "@"); ok {
		a.pos, a.dest = true, d
	} else if strings.HasPrefix(words[0], "-") {
		r.opts = strings.Split(words[0], ",")
		a.name = strings.Join(r.opts, "/")
		a.dest = strings.ReplaceAll(strings.TrimLeft(r.opts[0], "-"), "-", "_")
	} else {
		return tableRow{}, fmt.Errorf("%q: not an option, positional or keyword", words[0])
	}
	switch n := words[1]; n {
	case "0":
		a.nargs = nargsZero
	case "1":
		a.nargs = nargsOne
	case "?":
		a.nargs = nargsOptional
	case "*":
		a.nargs = nargsStar
	case "+":
		a.nargs = nargsPlus
	default:
		k, err := strconv.Atoi(strings.TrimPrefix(n, "="))
		if err != nil || !strings.HasPrefix(n, "=") || k < 1 {
			return tableRow{}, fmt.Errorf("%s: bad arity %q", words[0], n)
		}
		a.nargs = nargs(k)
	}
	r.set = fromIndex(0)
	var since, removed = 0, len(lineage)
	only := false
	depFrom := -1
	for _, w := range words[2:] {
		key, val, hasVal := strings.Cut(w, "=")
		var err error
		switch {
		case w == "int":
			a.typ = typeInt
		case w == "float":
			a.typ = typeFloat
		case w == "bool":
			a.typ = typeBool
		case w == "required":
			a.required = true
		case w == "deprecated":
			depFrom = 0
		case key == "deprecated" && hasVal:
			depFrom, err = parseRelease(val)
		case key == "dest" && hasVal:
			a.dest = val
		case key == "metavar" && hasVal:
			a.metavar = val
		case key == "choices" && hasVal:
			a.choices = strings.Split(val, ",")
		case key == "enum" && hasVal:
			e, ok := enumTypes[val]
			if !ok {
				return tableRow{}, fmt.Errorf("%s: unknown enum %q", words[0], val)
			}
			a.typ, a.enum, a.enumMsg, a.enumUpper = typeEnum, e.values, e.msg, e.upper
		case key == "since" && hasVal:
			since, err = parseRelease(val)
		case key == "removed" && hasVal:
			removed, err = parseRelease(val)
		case key == "only" && hasVal:
			only = true
			r.set, err = parseRelSet(val)
		default:
			return tableRow{}, fmt.Errorf("%s: unknown attribute %q", words[0], w)
		}
		if err != nil {
			return tableRow{}, fmt.Errorf("%s: %w", words[0], err)
		}
	}
	if !only {
		r.set = fromIndex(since) &^ fromIndex(removed)
	}
	if r.set == 0 {
		return tableRow{}, fmt.Errorf("%s: in no release", words[0])
	}
	if depFrom >= 0 {
		r.deprecated = r.set & fromIndex(depFrom)
	}
	return r, nil
}

// build adds the block's spec to every release that has a class for it.
func (b *tableBlock) build(out map[Version]releaseTable) error {
	for _, v := range lineage {
		var cls *tableClass
		for i := range b.classes {
			if b.classes[i].set.has(v) {
				if cls != nil {
					return fmt.Errorf("two classes for %v", v)
				}
				cls = &b.classes[i]
			}
		}
		if cls == nil {
			continue
		}
		spec := &cmdSpec{class: cls.class, style: cls.style, conflicts: cls.conflicts}
		takesArgs := cls.style == styleStrict || cls.style == styleKnown
		if takesArgs {
			spec.acts, spec.names = []act{}, []optName{}
		}
		for _, r := range b.rows {
			if !r.set.has(v) {
				continue
			}
			if !takesArgs {
				return fmt.Errorf("%v: %s takes no options but the table lists %s", v, cls.class, r.act.displayName())
			}
			a := r.act
			a.deprecated = r.deprecated.has(v)
			for _, o := range r.opts {
				spec.names = append(spec.names, optName{o, len(spec.acts)})
			}
			spec.acts = append(spec.acts, a)
		}
		m := out[v].cmds
		if b.section {
			m = out[v].secs
		}
		for _, n := range b.names {
			if m[n] != nil {
				return fmt.Errorf("%v: %s defined twice", v, n)
			}
			m[n] = spec
		}
	}
	return nil
}
