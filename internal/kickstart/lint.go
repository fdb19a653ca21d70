package kickstart

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Severity of a Problem.
type Severity string

const (
	SeverityError   Severity = "error"
	SeverityWarning Severity = "warning"
)

// Problem is one finding, at a file and line.
type Problem struct {
	File     string   `json:"file"`
	Line     int      `json:"line"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	// Deprecation marks ksvalidator deprecation warnings, which are
	// errors unless LintOptions.AllowDeprecated is set.
	Deprecation bool `json:"deprecation,omitempty"`
	// Kickstand marks checks ksvalidator does not make.
	Kickstand bool `json:"kickstand,omitempty"`
	// Hint names the likely mistake behind a common error.
	Hint string `json:"hint,omitempty"`
	// ks is the line ksvalidator reports for the same problem (see Pos).
	ks int
	// kind and words classify problems caused by a release change.
	kind  problemKind
	words []string
	// cmd is the command or section the problem is about.
	cmd string
}

// problemKind says whether a problem comes from a command or option that
// another release has, which a rewrite for the release can fix.
type problemKind uint8

const (
	kindOther problemKind = iota
	kindUnknownCommand
	kindRemovedCommand
	kindDeprecatedCommand
	kindUnknownOption
	kindDeprecatedOption
)

func (p Problem) String() string {
	s := fmt.Sprintf("%s:%d: %s: %s", p.File, p.Line, p.Severity, printableMessage(p.Message))
	if p.Hint != "" {
		s += " (hint: " + p.Hint + ")"
	}
	return s
}

// printableMessage shows control characters in a message (pykickstart
// quotes words verbatim, newline included) as Go escapes, so one problem
// stays one line of output.
func printableMessage(m string) string {
	if !strings.ContainsFunc(m, unicode.IsControl) {
		return m
	}
	var b strings.Builder
	for _, r := range m {
		if unicode.IsControl(r) {
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// ksvalidatorLine is the line ksvalidator would print for this problem.
func (p Problem) ksvalidatorLine() int {
	if p.ks != 0 {
		return p.ks
	}
	return p.Line
}

// LintOptions tunes Lint.
type LintOptions struct {
	// AllowDeprecated reports deprecations as warnings instead of errors.
	AllowDeprecated bool
	// Parse controls %include/%ksappend following.
	Parse ParseOptions
}

// Lint checks a kickstart for the given release the way ksvalidator does,
// plus kickstand's own warnings and hints. The kickstart fails exactly
// when HasErrors(problems, false): every ksvalidator problem is an error
// (deprecations too, unless AllowDeprecated), kickstand's own findings are
// warnings. Includes are followed only with opts.Parse.FollowIncludes.
func Lint(src []byte, name string, v Version, opts LintOptions) []Problem {
	return LintContext(context.Background(), src, name, v, opts)
}

// LintContext is Lint with a context for fetching includes.
func LintContext(ctx context.Context, src []byte, name string, v Version, opts LintOptions) []Problem {
	return LintFile(Parse(ctx, src, name, opts.Parse), v, opts)
}

// LintFile checks an already parsed kickstart.
func LintFile(f *File, v Version, opts LintOptions) []Problem {
	cmds, secs := v.tables()
	if cmds == nil {
		return []Problem{{File: f.Name, Severity: SeverityError, Message: fmt.Sprintf("unsupported kickstart version %v", v)}}
	}
	l := &linter{
		v: v, cmds: cmds, secs: secs, opts: opts, rc: regexCache{},
		seen: map[*cmdSpec]bool{}, defined: map[string]bool{}, multipath: map[string]string{},
	}
	l.walk(f)
	if !l.stopped && !hasContent(f) {
		// ksvalidator accepts a file of comments; Anaconda given one
		// stops at its interactive screens and waits.
		l.warn(Pos{File: f.Name, Line: 1}, "the kickstart has no commands: an installer given it waits at its interactive screens")
	}
	l.finish()
	return l.probs
}

func hasContent(f *File) bool {
	for _, n := range f.Nodes {
		if n.Kind != NodeBlank && n.Kind != NodeComment {
			return true
		}
	}
	return false
}

// Errors returns the problems that fail a kickstart: the ones to show
// when a render is refused.
func Errors(probs []Problem) []Problem {
	var out []Problem
	for _, p := range probs {
		if p.Severity == SeverityError {
			out = append(out, p)
		}
	}
	return out
}

// HasErrors reports whether problems should fail a lint run: any error,
// or any warning when strict.
func HasErrors(probs []Problem, strict bool) bool {
	for _, p := range probs {
		if p.Severity == SeverityError || strict {
			return true
		}
	}
	return false
}

type linter struct {
	v     Version
	cmds  map[string]*cmdSpec
	secs  map[string]*cmdSpec
	opts  LintOptions
	rc    regexCache
	probs []Problem
	seen  map[*cmdSpec]bool
	// defined holds "kind\x00key" for pykickstart's "already defined"
	// checks.
	defined map[string]bool
	// multipath maps a path device to the multipath device using it.
	multipath map[string]string
	// realmJoined: pykickstart takes one "realm join".
	realmJoined bool
	// dropped counts problems past maxProblems; firstDropped is the
	// first of them, its severity the worst.
	dropped      int
	firstDropped Problem
	// kickstand's own cross-line checks
	rootpw      []Pos
	cdrom, url  []Pos
	stopped     bool
	sawPackages bool
}

func problemAt(pos Pos, sev Severity, msg string) Problem {
	return Problem{File: pos.File, Line: pos.Line, ks: pos.ks, Severity: sev, Message: msg}
}

func (l *linter) add(pos Pos, sev Severity, msg string) {
	l.push(problemAt(pos, sev, msg))
}

// Hostile input must not make hostile output: a lint keeps at most
// maxProblems problems (then one line says how many more there were),
// and a message quoting a 10 MB word is cut.
const (
	maxProblems = 1000
	maxMessage  = 1024
)

func (l *linter) push(p Problem) {
	if len(p.Message) > maxMessage {
		cut := maxMessage - 64
		for cut > 0 && !utf8.RuneStart(p.Message[cut]) {
			cut--
		}
		p.Message = fmt.Sprintf("%s... (%d bytes)", p.Message[:cut], len(p.Message))
	}
	if len(l.probs) < maxProblems {
		l.probs = append(l.probs, p)
		return
	}
	if l.dropped == 0 {
		l.firstDropped = p
	}
	l.dropped++
	if p.Severity == SeverityError {
		l.firstDropped.Severity = SeverityError
	}
}

func (l *linter) deprecated(pos Pos, msg string) {
	sev := SeverityError
	if l.opts.AllowDeprecated {
		sev = SeverityWarning
	}
	p := problemAt(pos, sev, msg)
	p.Deprecation = true
	l.push(p)
}

func (l *linter) warn(pos Pos, msg string) {
	p := problemAt(pos, SeverityWarning, msg)
	p.Kickstand = true
	l.push(p)
}

func (l *linter) report(pos Pos, err *parseError) {
	msg, sev := err.msg, SeverityError
	if err.deprecatedOpt != "" {
		msg = fmt.Sprintf("Ignoring deprecated option on line %d: The %s option has been deprecated and no longer has any effect. It may be removed from future releases, which will result in a fatal error from kickstart. Please modify your kickstart file to remove this option.", pos.ksLine(), err.deprecatedOpt)
	}
	deprecation := err.deprecatedOpt != "" || err.isDeprecation
	if deprecation && l.opts.AllowDeprecated {
		sev = SeverityWarning
	}
	p := problemAt(pos, sev, msg)
	p.Deprecation, p.kind, p.words = deprecation, err.kind, err.words
	l.push(p)
}

func (l *linter) fatal(p *Problem) {
	l.push(*p)
	l.stopped = true
}

func (l *linter) walk(f *File) {
	if f.Fatal != nil {
		l.fatal(f.Fatal)
		return
	}
	var prev *Node
	for _, n := range f.Nodes {
		if l.stopped {
			return
		}
		from := len(l.probs)
		switch n.Kind {
		case NodeCommand:
			if n.Fatal == nil {
				l.command(n)
			}
		case NodeSection:
			l.section(n)
		case NodeInclude:
			l.include(n.IncludeProblem, n.Included)
		}
		if n.Fatal != nil && !l.stopped {
			l.fatal(n.Fatal)
		}
		if n.Kind == NodeCommand || n.Kind == NodeSection {
			l.annotate(n, prev, l.probs[from:])
			prev = n
		}
	}
}

// annotate names the command of the problems found on n's own line and
// adds hints.
func (l *linter) annotate(n, prev *Node, probs []Problem) {
	for i := range probs {
		p := &probs[i]
		if p.File != n.Pos.File || p.Line != n.Pos.Line || p.Kickstand {
			continue
		}
		if len(n.Args) > 0 {
			p.cmd = n.Args[0]
		}
		if p.Hint == "" {
			p.Hint = l.hint(p, n, prev)
		}
	}
}

// include reports an %include that could not be read, or lints the
// fragment it read. A missing file is fatal to ksvalidator; kickstand
// goes on so that one run shows every problem.
func (l *linter) include(prob *Problem, frag *File) {
	if prob != nil {
		l.push(*prob)
	}
	if frag != nil {
		l.walk(frag)
	}
}

func (l *linter) command(n *Node) {
	name, args := n.Args[0], n.Args[1:]
	spec, ok := l.cmds[name]
	if !ok {
		p := problemAt(n.Pos, SeverityError, "Unknown command: "+name)
		p.kind = kindUnknownCommand
		l.push(p)
		return
	}
	l.seen[spec] = true
	for _, c := range spec.conflicts {
		if cs, ok := l.cmds[c]; ok && l.seen[cs] && cs != spec {
			l.add(n.Pos, SeverityError, fmt.Sprintf("The %s and %s commands can't be used at the same time.", name, c))
			return
		}
	}
	c := &cmdCtx{l: l, n: n, name: name, args: args, spec: spec}
	if err := c.run(); err != nil {
		l.report(n.Pos, err)
		return
	}
	l.kickstandCommand(c)
}

// cmdCtx is one command line being checked.
type cmdCtx struct {
	l    *linter
	n    *Node
	name string
	args []string
	spec *cmdSpec
	res  *parseResult
}

func (c *cmdCtx) run() *parseError {
	switch c.spec.style {
	case styleDeprecated:
		return &parseError{isDeprecation: true, kind: kindDeprecatedCommand, msg: fmt.Sprintf("Ignoring deprecated command on line %d:  The %s command has been deprecated and no longer has any effect.  It may be removed from future releases, which will result in a fatal error from kickstart.  Please modify your kickstart file to remove this command.", c.n.Pos.ksLine(), c.name)}
	case styleRemoved:
		err := errorf("%s has been removed.", c.name)
		err.kind = kindRemovedCommand
		return err
	case styleNoImpl:
		return errorf("parse() not implemented for KickstartCommand")
	case styleNoArgs:
		if len(c.args) > 0 {
			return errorf("Kickstart command %s does not take any arguments", c.name)
		}
		return nil
	case styleRaw:
		return c.check()
	}
	res, err := c.spec.parse(c.args, c.spec.style == styleStrict, c.l.rc)
	if err != nil {
		return err
	}
	c.res = res
	return c.check()
}

// str returns the last value given for dest.
func (c *cmdCtx) str(dest string) string {
	v, _ := c.res.value(c.spec, dest)
	return v
}

// set reports whether any option with dest was given.
func (c *cmdCtx) set(dest string) bool { return c.res.has(c.spec, dest) }

// all returns every value given for dest (append/extend actions).
func (c *cmdCtx) all(dest string) []string {
	var out []string
	for i, a := range c.spec.acts {
		if a.dest == dest {
			out = append(out, c.res.vals[i]...)
		}
	}
	return out
}

func (c *cmdCtx) pos(dest string) []string { return c.res.positional(c.spec, dest) }

func (c *cmdCtx) className() string {
	if i := strings.LastIndexByte(c.spec.class, ' '); i >= 0 {
		return c.spec.class[i+1:]
	}
	return c.spec.class
}

func (c *cmdCtx) unexpected(command string) *parseError {
	err := errorf("Unexpected arguments to %s command: %s", command, pyList(c.res.extra))
	err.kind, err.words = kindUnknownOption, c.res.extra
	return err
}

// define records a key for an "already defined" check and reports
// whether it was new.
func (l *linter) define(kind, key string) bool {
	k := kind + "\x00" + key
	if l.defined[k] {
		return false
	}
	l.defined[k] = true
	return true
}

func (l *linter) section(n *Node) {
	name := n.Args[0]
	spec, ok := l.secs[name]
	if !ok {
		return // unknown section: Node.Fatal reports it
	}
	if spec.style != styleRaw {
		res, err := spec.parse(n.Args[1:], true, l.rc)
		if err == nil {
			err = l.sectionHeaderCheck(n, spec, res)
		}
		if err != nil {
			l.report(n.Pos, err)
		}
	}
	// A fragment included in the body is read at its %include line.
	for _, b := range n.Body {
		if b.Directive {
			l.include(b.IncludeProblem, b.Fragment)
		}
	}
	if l.stopped {
		return
	}
	if name == "%packages" {
		l.sawPackages = true
		for _, b := range n.Body {
			if b.Directive {
				continue
			}
			if p := packageLineProblem(b); p != nil {
				if n.Fatal == nil {
					l.fatal(p)
				}
				return
			}
		}
	}
	if name == "%certificate" && n.End != nil && n.Fatal == nil {
		empty := true
		for _, b := range n.Body {
			if !b.Directive && strings.TrimFunc(b.Raw, pySpace) != "" {
				empty = false
			}
		}
		if empty {
			p := problemAt(n.End.Pos, SeverityError, "The %certificate section is empty")
			l.fatal(&p)
		}
	}
	if name == "%pre" || name == "%post" || name == "%pre-install" || name == "%onerror" || name == "%traceback" {
		l.kickstandScript(n)
	}
}

// packageLineProblem mirrors the fatal errors pykickstart's Packages.add
// raises on a %packages body line.
func packageLineProblem(b BodyLine) *Problem {
	if isBlankOrComment(b.Raw) {
		return nil
	}
	line := b.Raw
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	s := strings.TrimFunc(line, pySpace)
	fail := func(msg string) *Problem {
		p := problemAt(b.Pos, SeverityError, msg)
		return &p
	}
	switch {
	case s == "":
		return fail("General error in input file:  string index out of range")
	case s == "-":
		return fail("General error in input file:  string index out of range")
	case strings.HasPrefix(s, "@") && !strings.HasPrefix(s, "@^"):
		words := pyFields(s[1:])
		nodef, opt := false, false
		for _, w := range words {
			switch {
			case w == "--nodefaults" || (len(w) > 2 && strings.HasPrefix("--nodefaults", w) && !strings.HasPrefix("--optional", w)):
				nodef = true
			case w == "--optional" || (len(w) > 2 && strings.HasPrefix("--optional", w) && !strings.HasPrefix("--nodefaults", w)):
				opt = true
			}
		}
		if nodef && opt {
			return fail("Group cannot specify both --nodefaults and --optional")
		}
	}
	return nil
}

func (l *linter) finish() {
	if l.dropped > 0 {
		defer func() {
			p := l.firstDropped
			p.Message = fmt.Sprintf("%d more problems from here on are not shown (the first was: %s)", l.dropped, p.Message)
			p.Kickstand, p.Hint = true, ""
			l.probs = append(l.probs, p)
		}()
	}
	// kickstand-only cross-line warnings
	if len(l.rootpw) > 1 {
		for _, p := range l.rootpw[1:] {
			l.warn(p, fmt.Sprintf("rootpw given again (first at line %d); the last one wins", l.rootpw[0].Line))
		}
	}
	if len(l.cdrom) > 0 && len(l.url) > 0 {
		l.warn(l.cdrom[0], fmt.Sprintf("cdrom together with url (line %d): only one install source is used", l.url[0].Line))
	}
}
