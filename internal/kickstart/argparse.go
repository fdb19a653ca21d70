package kickstart

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// This file emulates the parts of Python 3.11's argparse that decide
// whether pykickstart accepts a command line: option lookup with
// unambiguous prefixes, arity, value types and choices, required options,
// mutually exclusive groups and positional arguments. The error texts are
// argparse's, so that kickstand and ksvalidator report the same message.

type cmdStyle uint8

const (
	styleStrict     cmdStyle = iota // parse_args: leftovers are "unrecognized arguments"
	styleKnown                      // parse_known_args: the command inspects leftovers itself
	styleRaw                        // takes the rest of the line verbatim
	styleNoArgs                     // takes no arguments at all
	styleNoImpl                     // pykickstart placeholder whose parse() raises
	styleDeprecated                 // DeprecatedCommand: always a deprecation warning
	styleRemoved                    // RemovedCommand: always an error
)

type nargsKind int

const (
	nargsOne      nargsKind = -1
	nargsZero     nargsKind = 0
	nargsOptional nargsKind = -2
	nargsStar     nargsKind = -3
	nargsPlus     nargsKind = -4
)

func nargs(n int) nargsKind { return nargsKind(n) }

type valueType uint8

const (
	typeStr valueType = iota
	typeInt
	typeFloat
	typeBool
	typeEnum // a pykickstart callback mapping names to constants
)

// act is one argparse action.
type act struct {
	dest       string
	name       string // option strings joined by "/", as argparse names it
	pos        bool
	metavar    string
	nargs      nargsKind
	typ        valueType
	enum       []string
	enumMsg    string
	enumUpper  bool
	choices    []string
	required   bool
	deprecated bool
}

type optName struct {
	s   string
	act int
}

type group struct {
	members  []int
	required bool
}

// cmdSpec describes one kickstart command or section header for one
// release, mirroring one pykickstart class.
type cmdSpec struct {
	class     string
	style     cmdStyle
	acts      []act
	names     []optName
	groups    []group
	conflicts []string
}

// parseResult is the argparse namespace: values per action index.
type parseResult struct {
	vals  map[int][]string // raw strings given for an action (flags: empty slice)
	extra []string
	// explicit keeps, per option string given, the original argument
	// (for the deprecation checks that look at the literal spelling).
	given []string
}

func (r *parseResult) has(spec *cmdSpec, dest string) bool {
	for i, a := range spec.acts {
		if a.dest == dest {
			if _, ok := r.vals[i]; ok {
				return true
			}
		}
	}
	return false
}

// value returns the last value stored for dest (argparse "store" semantics).
func (r *parseResult) value(spec *cmdSpec, dest string) (string, bool) {
	var v string
	found := false
	for i, a := range spec.acts {
		if a.dest != dest {
			continue
		}
		if vs, ok := r.vals[i]; ok {
			found = true
			if len(vs) > 0 {
				v = vs[len(vs)-1]
			}
		}
	}
	return v, found
}

// positional returns the values of the positional action named dest.
func (r *parseResult) positional(spec *cmdSpec, dest string) []string {
	for i, a := range spec.acts {
		if a.pos && a.dest == dest {
			return r.vals[i]
		}
	}
	return nil
}

// parseError is an argparse (or pykickstart) error for one line.
type parseError struct {
	msg string
	// deprecatedOpt is set when the error is argparse meeting an option
	// pykickstart marks deprecated; the caller words the warning.
	deprecatedOpt string
	// isDeprecation marks pykickstart deprecation warnings, which
	// --allow-deprecated downgrades.
	isDeprecation bool
	// kind and words say what changed between releases, when that is the
	// cause, for hints and for the rewriter's test.
	kind  problemKind
	words []string
}

func (e *parseError) Error() string { return e.msg }

func errorf(format string, args ...any) *parseError {
	return &parseError{msg: fmt.Sprintf(format, args...)}
}

func (s *cmdSpec) lookup(opt string) (int, bool) {
	for _, n := range s.names {
		if n.s == opt {
			return n.act, true
		}
	}
	return 0, false
}

var negativeNumber = regexp.MustCompile(`^-\d+$|^-\d*\.\d+$`)

// classify mirrors ArgumentParser._parse_optional: it returns the action
// index (-1 for an unknown option), the option string, an explicit
// "=value", and whether arg is an option at all.
func (s *cmdSpec) classify(arg string) (idx int, opt, explicit string, hasExplicit, isOpt bool, err *parseError) {
	if arg == "" || arg[0] != '-' {
		return 0, "", "", false, false, nil
	}
	if i, ok := s.lookup(arg); ok {
		return i, arg, "", false, true, nil
	}
	if len(arg) == 1 {
		return 0, "", "", false, false, nil
	}
	if k := strings.IndexByte(arg, '='); k >= 0 {
		if i, ok := s.lookup(arg[:k]); ok {
			return i, arg[:k], arg[k+1:], true, true, nil
		}
	}
	type match struct {
		idx      int
		opt, exp string
		hasExp   bool
	}
	var matches []match
	if len(arg) > 1 && arg[1] == '-' {
		prefix, exp, hasExp := arg, "", false
		if k := strings.IndexByte(arg, '='); k >= 0 {
			prefix, exp, hasExp = arg[:k], arg[k+1:], true
		}
		for _, n := range s.names {
			if strings.HasPrefix(n.s, prefix) {
				matches = append(matches, match{n.act, n.s, exp, hasExp})
			}
		}
	} else {
		short, shortExp := arg[:2], arg[2:]
		for _, n := range s.names {
			if n.s == short {
				matches = append(matches, match{n.act, n.s, shortExp, true})
			} else if strings.HasPrefix(n.s, arg) {
				matches = append(matches, match{n.act, n.s, "", false})
			}
		}
	}
	if len(matches) > 1 {
		opts := make([]string, len(matches))
		for i, m := range matches {
			opts[i] = m.opt
		}
		return 0, "", "", false, false, errorf("ambiguous option: %s could match %s", arg, strings.Join(opts, ", "))
	}
	if len(matches) == 1 {
		m := matches[0]
		return m.idx, m.opt, m.exp, m.hasExp, true, nil
	}
	if negativeNumber.MatchString(arg) && !s.hasNegativeLikeOption() {
		return 0, "", "", false, false, nil
	}
	if strings.Contains(arg, " ") {
		return 0, "", "", false, false, nil
	}
	return -1, arg, "", false, true, nil
}

func (s *cmdSpec) hasNegativeLikeOption() bool {
	for _, n := range s.names {
		if negativeNumber.MatchString(n.s) {
			return true
		}
	}
	return false
}

func (a *act) displayName() string {
	if a.pos {
		if a.metavar != "" {
			return a.metavar
		}
		return a.dest
	}
	return a.name
}

// pyRepr renders a string as Python's repr() does, for error messages.
func pyRepr(s string) string {
	q := "'"
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		q = `"`
	}
	var b strings.Builder
	b.WriteString(q)
	for _, r := range s {
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case string(r) == q:
			b.WriteString(`\` + q)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteString(q)
	return b.String()
}

// pyList renders a list of strings as Python's str(list).
func pyList(xs []string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = pyRepr(x)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// pyInt accepts what Python's int() accepts for a string: surrounding
// whitespace, one sign, digits with single underscores between them.
func pyInt(v string) bool {
	t := strings.TrimFunc(v, pySpace)
	if t != "" && (t[0] == '+' || t[0] == '-') {
		t = t[1:]
	}
	if t == "" || t[0] == '_' || t[len(t)-1] == '_' || strings.Contains(t, "__") {
		return false
	}
	for _, r := range t {
		if (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return true
}

func pyFloat(v string) bool {
	t := strings.ToLower(strings.TrimFunc(v, pySpace))
	switch strings.TrimLeft(t, "+-") {
	case "inf", "infinity", "nan":
		return true
	}
	if strings.Contains(t, "_") {
		if strings.HasPrefix(t, "_") || strings.HasSuffix(t, "_") || strings.Contains(t, "__") {
			return false
		}
		t = strings.ReplaceAll(t, "_", "")
	}
	if strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "+0x") || strings.HasPrefix(t, "-0x") {
		return false
	}
	f, err := strconv.ParseFloat(t, 64)
	return err == nil || math.IsInf(f, 0)
}

// convert applies the action's type and choices to one value.
func (a *act) convert(v string) *parseError {
	switch a.typ {
	case typeInt:
		if !pyInt(v) {
			return errorf("argument %s: invalid int value: %s", a.displayName(), pyRepr(v))
		}
	case typeFloat:
		if !pyFloat(v) {
			return errorf("argument %s: invalid float value: %s", a.displayName(), pyRepr(v))
		}
	case typeBool:
		switch strings.ToLower(v) {
		case "on", "yes", "true", "1", "off", "no", "false", "0":
		default:
			return errorf("argument %s: invalid boolean value: %s", a.displayName(), pyRepr(v))
		}
	case typeEnum:
		k := strings.ToLower(v)
		if a.enumUpper {
			k = strings.ToUpper(v)
		}
		ok := false
		for _, e := range a.enum {
			if e == k {
				ok = true
				break
			}
		}
		if !ok {
			return errorf(a.enumMsg, v)
		}
	}
	if len(a.choices) > 0 {
		for _, c := range a.choices {
			if c == v {
				return nil
			}
		}
		reprs := make([]string, len(a.choices))
		for i, c := range a.choices {
			reprs[i] = pyRepr(c)
		}
		return errorf("argument %s: invalid choice: %s (choose from %s)", a.displayName(), pyRepr(v), strings.Join(reprs, ", "))
	}
	return nil
}

// nargsPattern is argparse's _get_nargs_pattern over the 'A'/'O' string.
func nargsPattern(n nargsKind) string {
	switch n {
	case nargsOne:
		return "(-*A-*)"
	case nargsOptional:
		return "(-*A?-*)"
	case nargsStar:
		return "(-*[A-]*)"
	case nargsPlus:
		return "(-*A[A-]*)"
	case nargsZero:
		return "(-*-*)"
	default:
		return "(-*" + strings.Repeat("A-*", int(n)) + ")"
	}
}

func nargsError(a *act) *parseError {
	switch a.nargs {
	case nargsOne:
		return errorf("argument %s: expected one argument", a.displayName())
	case nargsOptional:
		return errorf("argument %s: expected at most one argument", a.displayName())
	case nargsPlus:
		return errorf("argument %s: expected at least one argument", a.displayName())
	default:
		n := int(a.nargs)
		s := "s"
		if n == 1 {
			s = ""
		}
		return errorf("argument %s: expected %d argument%s", a.displayName(), n, s)
	}
}

// regexCache avoids recompiling the handful of distinct nargs patterns.
type regexCache map[string]*regexp.Regexp

func (c regexCache) get(p string) *regexp.Regexp {
	if re, ok := c[p]; ok {
		return re
	}
	re := regexp.MustCompile("^" + p)
	c[p] = re
	return re
}

// parse runs the emulated argparse over args (the words after the command
// name). Errors come in argparse's order: ambiguous or deprecated options
// while classifying, then value errors left to right, then missing
// required options, then (strict style) unrecognized arguments.
func (s *cmdSpec) parse(args []string, strict bool, rc regexCache) (*parseResult, *parseError) {
	res := &parseResult{vals: map[int][]string{}}
	// pattern is argparse's string of 'O' (option), 'A' (argument) and
	// '-' ("--"); options are classified again where they are consumed
	// rather than kept, so a 10 MB line costs one byte per word here.
	pattern := make([]byte, len(args))
	rest := false
	for i, a := range args {
		if rest {
			pattern[i] = 'A'
			continue
		}
		if a == "--" {
			pattern[i] = '-'
			rest = true
			continue
		}
		idx, _, _, _, isOpt, err := s.classify(a)
		if err != nil {
			return nil, err
		}
		if !isOpt {
			pattern[i] = 'A'
			continue
		}
		pattern[i] = 'O'
		if idx >= 0 && s.acts[idx].deprecated {
			return nil, &parseError{deprecatedOpt: firstName(s.acts[idx].name), kind: kindDeprecatedOption, words: []string{firstName(s.acts[idx].name)}}
		}
	}

	seen := map[int]bool{}
	seenNonDefault := map[int]bool{}
	var positionals []int
	for i := range s.acts {
		if s.acts[i].pos {
			positionals = append(positionals, i)
		}
	}
	take := func(idx int, vals []string) *parseError {
		a := &s.acts[idx]
		seen[idx] = true
		for _, v := range vals {
			if err := a.convert(v); err != nil {
				return err
			}
		}
		// argparse skips the conflict check when the value is the
		// default; only an empty '*' positional or '?' without value is.
		if !(a.pos && len(vals) == 0) {
			seenNonDefault[idx] = true
			for _, g := range s.groups {
				in := false
				for _, m := range g.members {
					if m == idx {
						in = true
					}
				}
				if !in {
					continue
				}
				for _, m := range g.members {
					if m != idx && seenNonDefault[m] {
						return errorf("argument %s: not allowed with argument %s", a.displayName(), s.acts[m].displayName())
					}
				}
			}
		}
		if a.pos {
			res.vals[idx] = vals
		} else {
			res.vals[idx] = append(res.vals[idx], vals...)
			if len(vals) == 0 && res.vals[idx] == nil {
				res.vals[idx] = []string{}
			}
		}
		return nil
	}
	stripDashes := func(vals []string) []string {
		for i, v := range vals {
			if v == "--" {
				out := append([]string{}, vals[:i]...)
				return append(out, vals[i+1:]...)
			}
		}
		return vals
	}
	consumePositionals := func(start int) (int, *parseError) {
		sel := pattern[start:]
		// match as many positionals as possible, dropping from the end
		for n := len(positionals); n > 0; n-- {
			var p strings.Builder
			for _, idx := range positionals[:n] {
				p.WriteString(nargsPattern(s.acts[idx].nargs))
			}
			m := rc.get(p.String()).FindSubmatchIndex(sel)
			if m == nil {
				continue
			}
			for k, idx := range positionals[:n] {
				cnt := m[2*k+3] - m[2*k+2]
				vals := stripDashes(append([]string{}, args[start:start+cnt]...))
				if err := take(idx, vals); err != nil {
					return 0, err
				}
				start += cnt
			}
			positionals = positionals[n:]
			return start, nil
		}
		return start, nil
	}

	start := 0
	for start < len(args) {
		next := -1
		for i := start; i < len(args); i++ {
			if pattern[i] == 'O' {
				next = i
				break
			}
		}
		if next < 0 {
			break
		}
		if start != next {
			end, err := consumePositionals(start)
			if err != nil {
				return nil, err
			}
			if end > start {
				start = end
				continue
			}
			// leftover words before the option are extras
			for ; start < next; start++ {
				res.extra = append(res.extra, args[start])
			}
		}
		idx, _, exp, hasExp, _, _ := s.classify(args[start])
		if idx < 0 {
			res.extra = append(res.extra, args[start])
			start++
			continue
		}
		a := &s.acts[idx]
		res.given = append(res.given, args[start])
		if hasExp {
			if a.nargs == nargsZero {
				return nil, errorf("argument %s: ignored explicit argument %s", a.displayName(), pyRepr(exp))
			}
			if a.nargs != nargsOne && a.nargs != nargsOptional && a.nargs != nargsStar && a.nargs != nargsPlus && a.nargs != 1 {
				return nil, nargsError(a)
			}
			if err := take(idx, []string{exp}); err != nil {
				return nil, err
			}
			start++
			continue
		}
		m := rc.get(nargsPattern(a.nargs)).FindSubmatchIndex(pattern[start+1:])
		if m == nil {
			return nil, nargsError(a)
		}
		cnt := m[3] - m[2]
		vals := stripDashes(append([]string{}, args[start+1:start+1+cnt]...))
		if a.nargs == nargsOptional && cnt == 0 {
			vals = nil
		}
		if err := take(idx, vals); err != nil {
			return nil, err
		}
		start += 1 + cnt
	}
	end, err := consumePositionals(start)
	if err != nil {
		return nil, err
	}
	res.extra = append(res.extra, args[end:]...)

	var missing []string
	for i := range s.acts {
		a := &s.acts[i]
		if a.required && !seen[i] {
			missing = append(missing, a.displayName())
		}
	}
	if len(missing) > 0 {
		return nil, errorf("the following arguments are required: %s", strings.Join(missing, ", "))
	}
	for _, g := range s.groups {
		if !g.required {
			continue
		}
		ok := false
		var names []string
		for _, m := range g.members {
			names = append(names, s.acts[m].displayName())
			if seen[m] {
				ok = true
			}
		}
		if !ok {
			return nil, errorf("one of the arguments %s is required", strings.Join(names, " "))
		}
	}
	if strict && len(res.extra) > 0 {
		err := errorf("unrecognized arguments: %s", strings.Join(res.extra, " "))
		err.kind, err.words = kindUnknownOption, res.extra
		return nil, err
	}
	return res, nil
}

func firstName(joined string) string {
	if i := strings.IndexByte(joined, '/'); i >= 0 {
		return joined[:i]
	}
	return joined
}
