package kickstart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"
)

// Pos is where a node came from. Every node keeps it so problems and
// rewrites can point at file:line even through %include.
type Pos struct {
	File string
	Line int
	// ks is the line number ksvalidator gives the same line: it counts
	// the top-level file after %ksappend fragments are spliced in, and
	// each %include fragment on its own. Tests compare with it.
	ks int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// ksLine is the line number pykickstart prints in its own messages.
func (p Pos) ksLine() int {
	if p.ks != 0 {
		return p.ks
	}
	return p.Line
}

// NodeKind says what a top-level line of a kickstart is.
type NodeKind uint8

const (
	NodeBlank NodeKind = iota
	NodeComment
	NodeCommand
	NodeSection
	NodeInclude  // %include
	NodeKsappend // %ksappend
	// NodeIgnored is a line pykickstart skips: an included fragment left
	// a section open, and the including file's lines are then not read.
	NodeIgnored
)

// Node is one top-level element: a line, or a section with its body.
type Node struct {
	Kind NodeKind
	Pos  Pos
	// Raw is the source line without its terminator (for a section, the
	// header line).
	Raw string
	// Args are the shell words of a command, section header, %include or
	// %ksappend line; Args[0] is the command or section name.
	Args []string
	toks []token
	// comment is the byte offset of a trailing comment in Raw, or -1.
	comment int
	// eol is the line terminator; Python ends lines at \f, \v and more,
	// and shlex then keeps such a character inside the last word.
	eol string
	// Body holds a section's lines between the header and %end.
	Body []BodyLine
	// End is the %end line, nil when the section is not terminated.
	End *BodyLine
	// Included is the parsed target of a followed %include.
	Included *File
	// IncludeProblem is why a followed %include could not be read.
	IncludeProblem *Problem
	// Fatal is the error that stopped pykickstart's parser on this node;
	// nothing after it is checked.
	Fatal *Problem
	// spliced marks a line a followed %ksappend brought in.
	spliced bool
}

// BodyLine is one line inside a section.
type BodyLine struct {
	Pos Pos
	Raw string
	eol string
	// Directive marks a %include line inside the section: pykickstart
	// reads the file it names instead of passing the line to the section.
	Directive bool
	// Included marks a line read from an %include fragment (or, after a
	// fragment left the section open, from the file that included it).
	// Printing the file skips it; linting reads it as part of the body.
	Included bool
	// Fragment is the file a followed %include directive read, and
	// IncludeProblem why it could not be read.
	Fragment       *File
	IncludeProblem *Problem
}

// File is a parsed kickstart.
type File struct {
	Name  string
	Nodes []*Node
	// Fatal is a problem with the file as a whole (empty, not UTF-8, a
	// %ksappend that cannot be read) that stops ksvalidator before it
	// reads a single command.
	Fatal *Problem
}

// ParseOptions controls %include and %ksappend handling.
type ParseOptions struct {
	// FollowIncludes reads %include and %ksappend targets, as
	// `ksvalidator -i` does. Without it both lines are left alone.
	FollowIncludes bool
	// IncludeDirs are searched, in order, for a relative include target
	// that is not next to the file that names it.
	IncludeDirs []string
	// AllowMissing lists path.Match patterns, matched against the target
	// as written (for example /tmp/*), of includes that may be missing
	// because %pre writes them at install time. They are warnings.
	AllowMissing []string
	// MaxDepth bounds nested includes; 0 means 8.
	MaxDepth int
	// MaxBytes bounds what all included files together may add; 0 means
	// 64 MiB.
	MaxBytes int
	// Fetch reads an include target (a path or a URL). Nil uses
	// DefaultFetch. Tests inject their own so they never touch the network.
	Fetch func(ctx context.Context, ref string) ([]byte, error)
}

// maxFetch bounds one include target, read from disk or over HTTP.
const maxFetch = 16 << 20

// DefaultFetch reads local files, and http(s)/ftp URLs over HTTP with a
// timeout. A missing file is an error wrapping fs.ErrNotExist.
func DefaultFetch(ctx context.Context, ref string) ([]byte, error) {
	if isURL(ref) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, ref, nil)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", ref, err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", ref, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusNotFound {
			return nil, fmt.Errorf("fetch %s: %s: %w", ref, resp.Status, fs.ErrNotExist)
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch %s: %s", ref, resp.Status)
		}
		return readBounded(resp.Body, ref)
	}
	f, err := os.Open(ref)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readBounded(f, ref)
}

func readBounded(r io.Reader, ref string) ([]byte, error) {
	return readLimit(r, ref, maxFetch)
}

func readLimit(r io.Reader, ref string, limit int) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, int64(limit)+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", ref, err)
	}
	if len(b) > limit {
		return nil, fmt.Errorf("read %s: larger than %d MiB", ref, limit>>20)
	}
	return b, nil
}

func isURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	switch u.Scheme {
	case "http", "https", "ftp", "file":
		return u.Host != "" || u.Scheme == "file"
	}
	return false
}

// candidates lists where an include target may be: next to the file
// that names it, then in each include directory. Absolute paths and URLs
// are read as written.
func (p *parser) candidates(from, ref string) []string {
	if isURL(ref) || filepath.IsAbs(ref) {
		return []string{ref}
	}
	if isURL(from) {
		if base, err := url.Parse(from); err == nil {
			if r, err := url.Parse(ref); err == nil {
				return []string{base.ResolveReference(r).String()}
			}
		}
		return []string{ref}
	}
	out := []string{filepath.Join(filepath.Dir(from), ref)}
	for _, d := range p.opts.IncludeDirs {
		out = append(out, filepath.Join(d, ref))
	}
	return out
}

type srcLine struct {
	pos Pos
	raw string // with terminator
	// spliced marks a line a %ksappend brought in (or one the end of its
	// fragment ran into); printOnly marks a source line kept only so the
	// file prints as written: the %ksappend line itself, and a line that
	// a fragment without a final newline ran into. pykickstart neither
	// counts nor reads printOnly lines.
	spliced, printOnly bool
}

type parser struct {
	ctx   context.Context
	opts  ParseOptions
	stack []string
	bytes int
	// fatal is set once pykickstart would have stopped; the rest is
	// still parsed, leniently, so Format can print all of it.
	fatal bool
	// open is the section a fragment left unterminated. pykickstart keeps
	// it as its state: the including file's lines are then read as that
	// section's body if the including file is itself a fragment, and
	// skipped if it is the top-level file.
	open *Node
}

// Parse parses a kickstart. It never fails: what pykickstart would reject
// is recorded on the nodes (Node.Fatal, File.Fatal) for Lint to report,
// and the rest of the file is still parsed so Format can print all of it.
func Parse(ctx context.Context, src []byte, name string, opts ParseOptions) *File {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 8
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = 64 << 20
	}
	if opts.Fetch == nil {
		opts.Fetch = DefaultFetch
	}
	p := &parser{ctx: ctx, opts: opts, stack: []string{name}}
	f := &File{Name: name}
	if prob := utf8Problem(src, name); prob != nil {
		// pykickstart decodes the whole file before reading a line.
		f.Fatal = prob
		p.fatal = true
	}
	lines := numberLines(src, name)
	if opts.FollowIncludes && !p.fatal {
		lines = p.ksappend(f, lines)
	}
	if !p.fatal && emptyInput(lines) {
		// ksvalidator: preprocessKickstart returns None for a file that
		// is only ASCII whitespace (bytes.strip), and that is fatal.
		f.Fatal = &Problem{File: name, Line: min(1, len(lines)), Severity: SeverityError,
			Message: "General error in input file:  Empty file"}
		p.fatal = true
	}
	p.run(f, lines)
	return f
}

// ParseString parses a kickstart without following includes.
func ParseString(src, name string) *File {
	return Parse(context.Background(), []byte(src), name, ParseOptions{})
}

func numberLines(src []byte, name string) []srcLine {
	var lines []srcLine
	for i, l := range splitLines(string(src)) {
		lines = append(lines, srcLine{pos: Pos{File: name, Line: i + 1, ks: i + 1}, raw: l})
	}
	return lines
}

// emptyInput is Python's bytes.strip() == b"": only ASCII whitespace.
func emptyInput(lines []srcLine) bool {
	for _, l := range lines {
		if !l.printOnly && strings.Trim(l.raw, " \t\n\r\v\f") != "" {
			return false
		}
	}
	return true
}

// utf8Problem reports the first byte Python's UTF-8 decoder refuses, in
// its words, so the verdict and message match ksvalidator's.
func utf8Problem(src []byte, name string) *Problem {
	if utf8.Valid(src) {
		return nil
	}
	line, off := 1, 0
	for off < len(src) {
		r, size := utf8.DecodeRune(src[off:])
		if r != utf8.RuneError || size > 1 {
			if r == '\n' {
				line++
			}
			off += size
			continue
		}
		why := "invalid start byte"
		b := src[off]
		if b >= 0xc2 && b <= 0xf4 {
			if n := utf8Need(b); off+n > len(src) && allContinuation(src[off+1:]) {
				why = "unexpected end of data"
			} else {
				why = "invalid continuation byte"
			}
		}
		return &Problem{File: name, Line: line, Severity: SeverityError,
			Message: fmt.Sprintf("General error in input file:  'utf-8' codec can't decode byte 0x%02x in position %d: %s", b, off, why),
			Hint:    "the file is not UTF-8; convert it (for example with iconv -t UTF-8)"}
	}
	return nil
}

func utf8Need(b byte) int {
	switch {
	case b >= 0xf0:
		return 4
	case b >= 0xe0:
		return 3
	}
	return 2
}

func allContinuation(b []byte) bool {
	for _, c := range b {
		if c&0xc0 != 0x80 {
			return false
		}
	}
	return true
}

// ksappend splices %ksappend targets into the top-level file before it is
// parsed, as pykickstart's preprocessKickstart does: any line whose
// stripped text starts with %ksappend, even inside a section, is replaced
// by the file it names, verbatim. Lines keep the position of the file
// they came from; ks numbers the combined text as ksvalidator does.
func (p *parser) ksappend(f *File, lines []srcLine) []srcLine {
	var out []srcLine
	var pending *srcLine // a fragment's last line had no terminator
	emit := func(l srcLine) {
		if pending != nil {
			if !l.spliced {
				own := l
				own.printOnly = true
				out = append(out, own)
			}
			l.raw, l.pos, l.spliced = pending.raw+l.raw, pending.pos, true
			pending = nil
		}
		l.pos.ks = ksCount(out) + 1
		out = append(out, l)
	}
	for i, l := range lines {
		t := strings.TrimFunc(l.raw, pySpace)
		if !strings.HasPrefix(t, "%ksappend") {
			emit(l)
			continue
		}
		directive := l
		directive.printOnly, directive.pos.ks = true, 0
		var prob *Problem
		var b []byte
		var name string
		if fields := strings.Split(t, " "); len(fields) < 2 {
			prob = &Problem{File: l.pos.File, Line: l.pos.Line, ks: ksCount(out) + 1, Severity: SeverityError,
				Message: "Illegal url for %ksappend: " + t}
		} else {
			// a missing target is "Unable to open %ksappend file",
			// which ksvalidator prints without a line
			name, b, prob = p.read(l.pos, fields[1], "%ksappend")
		}
		if prob != nil && prob.Severity == SeverityError {
			f.Fatal = prob
			p.fatal = true
			for _, rest := range lines[i:] {
				emit(rest)
			}
			return out
		}
		out = append(out, directive)
		for k, fl := range splitLines(string(b)) {
			sl := srcLine{pos: Pos{File: name, Line: k + 1}, raw: fl, spliced: true}
			if chomp(fl) == fl {
				pending = &sl
				continue
			}
			emit(sl)
		}
	}
	if pending != nil {
		pending.pos.ks = ksCount(out) + 1
		out = append(out, *pending)
	}
	return out
}

// ksCount is how many lines ksvalidator has numbered so far: the
// %ksappend lines themselves are gone from its combined text.
func ksCount(lines []srcLine) int {
	n := 0
	for _, l := range lines {
		if !l.printOnly {
			n++
		}
	}
	return n
}

// read fetches an include target named at pos, trying each candidate
// path. A missing file allowed by AllowMissing comes back as a warning.
func (p *parser) read(at Pos, ref, directive string) (name string, b []byte, prob *Problem) {
	fail := func(sev Severity, msg, hint string) *Problem {
		return &Problem{File: at.File, Line: at.Line, ks: at.ks, Severity: sev, Message: msg, Hint: hint}
	}
	if len(p.stack) > p.opts.MaxDepth {
		return "", nil, fail(SeverityError, fmt.Sprintf("%s %s: include depth limit (%d) reached", directive, ref, p.opts.MaxDepth), "")
	}
	var tried []string
	for _, c := range p.candidates(at.File, ref) {
		for _, s := range p.stack {
			if s == c {
				return "", nil, fail(SeverityError, fmt.Sprintf("%s %s: include cycle (%s)", directive, ref, strings.Join(append(p.stack, c), " -> ")), "")
			}
		}
		b, err := p.opts.Fetch(p.ctx, c)
		if errors.Is(err, fs.ErrNotExist) {
			tried = append(tried, c)
			continue
		}
		if err != nil {
			return "", nil, fail(SeverityError, fmt.Sprintf("%s %s: %v", directive, ref, err), "")
		}
		if p.bytes += len(b); p.bytes > p.opts.MaxBytes {
			return "", nil, fail(SeverityError, fmt.Sprintf("%s %s: included files exceed %d MiB together", directive, ref, p.opts.MaxBytes>>20), "")
		}
		if prob := utf8Problem(b, c); prob != nil {
			return "", nil, prob
		}
		return c, b, nil
	}
	for _, pat := range p.opts.AllowMissing {
		if ok, _ := path.Match(pat, ref); ok {
			return "", nil, fail(SeverityWarning, fmt.Sprintf("%s %s: not found, not checked (allowed by --allow-missing %s: written at install time)", directive, ref, pat), "")
		}
	}
	return "", nil, fail(SeverityError, fmt.Sprintf("%s %s: file not found (looked for %s)", directive, ref, strings.Join(tried, ", ")),
		fmt.Sprintf("if %%pre writes it at install time, lint with --allow-missing '%s'", missingGlob(ref)))
}

// missingGlob suggests an --allow-missing pattern for a target: its
// directory with a wildcard, as %pre scripts write a few files there.
func missingGlob(ref string) string {
	if d := path.Dir(ref); d != "." && d != "/" {
		return d + "/*"
	}
	return ref
}

// sectionNames are the sections pykickstart registers for every release.
var sectionNames = map[string]bool{
	"%pre": true, "%pre-install": true, "%post": true, "%packages": true,
	"%onerror": true, "%traceback": true, "%certificate": true,
	"%addon": true, "%anaconda": true,
}

func (p *parser) setFatal(n *Node, pos Pos, msg string) {
	if !p.fatal {
		n.Fatal = &Problem{File: pos.File, Line: pos.Line, ks: pos.ks, Severity: SeverityError, Message: msg}
		p.fatal = true
	}
}

// run is pykickstart's line state machine (KickstartParser._stateMachine)
// over one file.
func (p *parser) run(f *File, lines []srcLine) {
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		raw := chomp(l.raw)
		n := &Node{Pos: l.pos, Raw: raw, comment: -1, eol: l.raw[len(raw):], spliced: l.spliced}
		f.Nodes = append(f.Nodes, n)
		if l.printOnly {
			// already spliced in; kept so the file prints as written
			n.Kind = NodeIgnored
			if strings.HasPrefix(strings.TrimFunc(l.raw, pySpace), "%ksappend") {
				n.Kind = NodeKsappend
			}
			n.toks, n.comment, _ = shlexSplit(l.raw, true)
			n.Args = tokenValues(n.toks)
			continue
		}
		if isBlankOrComment(l.raw) {
			if strings.TrimFunc(l.raw, pySpace) == "" {
				n.Kind = NodeBlank
			} else {
				n.Kind = NodeComment
			}
			continue
		}
		toks, comment, err := shlexSplit(l.raw, true)
		n.toks, n.comment, n.Args = toks, comment, tokenValues(toks)
		n.Kind = NodeCommand
		if err != nil {
			p.setFatal(n, l.pos, "General error in input file:  "+err.Error())
			continue
		}
		if len(n.Args) == 0 {
			p.setFatal(n, l.pos, "General error in input file:  list index out of range")
			continue
		}
		if n.Args[0] == "%include" {
			n.Kind = NodeInclude
			if len(n.Args) < 2 || n.Args[1] == "" {
				p.setFatal(n, l.pos, fmt.Sprintf("There was a problem reading from line %d of the kickstart file", l.pos.ks))
				continue
			}
			p.include(n)
			continue
		}
		if sec := p.open; sec != nil {
			if p.depth() == 0 {
				n.Kind = NodeIgnored
				continue
			}
			// pykickstart puts the line back and reads on as the body of
			// the section the fragment left open.
			f.Nodes = f.Nodes[:len(f.Nodes)-1]
			i = p.readSection(sec, lines, i, true) - 1
			continue
		}
		switch {
		case n.Args[0] == "%ksappend":
			// spliced by ksappend() when following includes; else ignored
			n.Kind = NodeKsappend
		case strings.HasPrefix(n.Args[0], "%"):
			n.Kind = NodeSection
			if !sectionNames[n.Args[0]] {
				p.setFatal(n, l.pos, "Unknown kickstart section: "+n.Args[0])
			}
			i = p.readSection(n, lines, i+1, false) - 1
		}
	}
}

// readSection collects a section body starting at lines[i] and returns the
// index of the first line after the section (pykickstart's _readSection).
// resumed is set when the body continues in a file other than the one
// holding the header.
func (p *parser) readSection(n *Node, lines []srcLine, i int, resumed bool) int {
	p.open = n
	for ; i < len(lines); i++ {
		l := lines[i]
		bl := bodyLine(l)
		bl.Included = resumed || l.spliced
		if l.printOnly {
			bl.Directive = true
			n.Body = append(n.Body, bl)
			continue
		}
		t := strings.TrimLeftFunc(l.raw, pySpace)
		if strings.HasPrefix(t, "%") {
			first := pyFields(l.raw)[0]
			if sectionNames[first] || first == "%end" || first == "%include" {
				toks, _, err := shlexSplit(l.raw, false)
				if err != nil {
					p.setFatal(n, l.pos, "General error in input file:  "+err.Error())
					n.Body = append(n.Body, bl)
					continue
				}
				args := tokenValues(toks)
				switch {
				case len(args) > 0 && args[0] == "%end":
					end := bl
					n.End = &end
					p.open = nil
					return i + 1
				case len(args) > 0 && args[0] == "%include":
					bl.Directive = true
					if len(args) < 2 || args[1] == "" {
						p.setFatal(n, l.pos, fmt.Sprintf("There was a problem reading from line %d of the kickstart file", l.pos.ks))
						n.Body = append(n.Body, bl)
						continue
					}
					n.Body = append(n.Body, bl)
					k := len(n.Body) - 1
					if frag, prob := p.fragment(l.pos, args[1]); prob != nil {
						n.Body[k].IncludeProblem = prob
					} else if frag != nil {
						n.Body[k].Fragment = frag.file
						// the fragment is read in this section's state
						p.runFragment(frag)
						// pykickstart's _readSection goes on reading
						// this section's body, whatever the fragment did
						p.open = n
					}
					continue
				case len(args) > 0 && sectionNames[args[0]]:
					p.setFatal(n, l.pos, fmt.Sprintf("Section %s does not end with %%end.", n.Args[0]))
					p.open = nil
					return i
				}
			}
		}
		n.Body = append(n.Body, bl)
	}
	if p.depth() == 0 {
		last := n.Pos
		if len(lines) > 0 {
			last = lines[len(lines)-1].pos
		}
		p.setFatal(n, last, fmt.Sprintf("Section %s does not end with %%end.", n.Args[0]))
		p.open = nil
	}
	return i
}

func bodyLine(l srcLine) BodyLine {
	raw := chomp(l.raw)
	return BodyLine{Pos: l.pos, Raw: raw, eol: l.raw[len(raw):]}
}

type fragment struct {
	file  *File
	lines []srcLine
}

// fragment reads an %include target into numbered lines; nil without a
// problem when includes are not followed.
func (p *parser) fragment(at Pos, ref string) (*fragment, *Problem) {
	if !p.opts.FollowIncludes {
		return nil, nil
	}
	name, b, prob := p.read(at, ref, "%include")
	if prob != nil {
		return nil, prob
	}
	return &fragment{file: &File{Name: name}, lines: numberLines(b, name)}, nil
}

func (p *parser) runFragment(fr *fragment) {
	p.stack = append(p.stack, fr.file.Name)
	p.run(fr.file, fr.lines)
	p.stack = p.stack[:len(p.stack)-1]
}

// depth is 0 while reading the top-level file, 1 in its fragments...
func (p *parser) depth() int { return len(p.stack) - 1 }

// include follows a top-level %include (pykickstart's _handleInclude): the
// fragment is read by the same state machine, with its own line numbers.
func (p *parser) include(n *Node) {
	fr, prob := p.fragment(n.Pos, n.Args[1])
	if prob != nil {
		n.IncludeProblem = prob
		return
	}
	if fr == nil {
		return
	}
	n.Included = fr.file
	p.runFragment(fr)
}
