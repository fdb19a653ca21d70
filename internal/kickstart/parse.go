package kickstart

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Pos is where a node came from. Every node keeps it so problems and
// rewrites can point at file:line even through %include.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string { return fmt.Sprintf("%s:%d", p.File, p.Line) }

// NodeKind says what a top-level line of a kickstart is.
type NodeKind uint8

const (
	NodeBlank NodeKind = iota
	NodeComment
	NodeCommand
	NodeSection
	NodeInclude  // %include
	NodeKsappend // %ksappend
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
	// Included is the parsed target of a followed %include or %ksappend.
	Included *File
	// Fatal is the error that stopped pykickstart's parser on this node;
	// nothing after it is checked.
	Fatal *Problem
}

// BodyLine is one line inside a section.
type BodyLine struct {
	Pos Pos
	Raw string
	eol string
	// Included holds the lines of a followed %include inside a section.
	Included []BodyLine
}

// File is a parsed kickstart.
type File struct {
	Name  string
	Nodes []*Node
	// Problems found while reading includes (not pykickstart verdicts).
	IncludeProblems []Problem
}

// ParseOptions controls %include and %ksappend handling.
type ParseOptions struct {
	// FollowIncludes reads %include and %ksappend targets; ksvalidator
	// does not follow %include unless given -i.
	FollowIncludes bool
	// MaxDepth bounds nested includes; 0 means 8.
	MaxDepth int
	// Fetch reads an include target (a path or a URL). Nil uses
	// DefaultFetch. Tests inject their own so they never touch the network.
	Fetch func(ctx context.Context, ref string) ([]byte, error)
}

// DefaultFetch reads local files, and http(s)/ftp URLs over HTTP with a
// timeout.
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
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("fetch %s: %s", ref, resp.Status)
		}
		b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		if err != nil {
			return nil, fmt.Errorf("fetch %s: %w", ref, err)
		}
		return b, nil
	}
	b, err := os.ReadFile(ref)
	if err != nil {
		return nil, fmt.Errorf("read include: %w", err)
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

// resolveRef makes an include target relative to the including file.
func resolveRef(from, ref string) string {
	if isURL(ref) || filepath.IsAbs(ref) {
		return ref
	}
	if isURL(from) {
		if base, err := url.Parse(from); err == nil {
			if r, err := url.Parse(ref); err == nil {
				return base.ResolveReference(r).String()
			}
		}
		return ref
	}
	return filepath.Join(filepath.Dir(from), ref)
}

type srcLine struct {
	pos Pos
	raw string // with terminator
}

type parser struct {
	ctx   context.Context
	opts  ParseOptions
	stack []string
}

// Parse parses a kickstart. It never fails: what pykickstart would reject
// is recorded on the nodes (Node.Fatal) for Lint to report, and the rest
// of the file is still parsed so Format can print all of it.
func Parse(ctx context.Context, src []byte, name string, opts ParseOptions) *File {
	if opts.MaxDepth <= 0 {
		opts.MaxDepth = 8
	}
	if opts.Fetch == nil {
		opts.Fetch = DefaultFetch
	}
	p := &parser{ctx: ctx, opts: opts, stack: []string{name}}
	return p.parseFile(src, name)
}

// ParseString parses a kickstart without following includes.
func ParseString(src, name string) *File {
	return Parse(context.Background(), []byte(src), name, ParseOptions{})
}

func (p *parser) fetch(ref string) ([]byte, *Problem) {
	if len(p.stack) > p.opts.MaxDepth {
		return nil, &Problem{Severity: SeverityError, Message: fmt.Sprintf("include depth limit (%d) reached at %s", p.opts.MaxDepth, ref)}
	}
	for _, s := range p.stack {
		if s == ref {
			return nil, &Problem{Severity: SeverityError, Message: fmt.Sprintf("include cycle: %s includes itself (%s)", ref, strings.Join(append(p.stack, ref), " -> "))}
		}
	}
	b, err := p.opts.Fetch(p.ctx, ref)
	if err != nil {
		return nil, &Problem{Severity: SeverityError, Message: fmt.Sprintf("Unable to open include file: %v", err)}
	}
	return b, nil
}

func (p *parser) parseFile(src []byte, name string) *File {
	f := &File{Name: name}
	var lines []srcLine
	for i, l := range splitLines(string(src)) {
		lines = append(lines, srcLine{pos: Pos{name, i + 1}, raw: l})
	}
	p.run(f, lines)
	return f
}

// sectionNames are the sections pykickstart registers for every release.
var sectionNames = map[string]bool{
	"%pre": true, "%pre-install": true, "%post": true, "%packages": true,
	"%onerror": true, "%traceback": true, "%certificate": true,
	"%addon": true, "%anaconda": true,
}

// run is pykickstart's line state machine (KickstartParser._stateMachine
// and _readSection).
func (p *parser) run(f *File, lines []srcLine) {
	fatal := false // after a fatal error, keep parsing leniently for Format
	setFatal := func(n *Node, pos Pos, msg string) {
		if !fatal {
			n.Fatal = &Problem{File: pos.File, Line: pos.Line, Severity: SeverityError, Message: msg}
			fatal = true
		}
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		raw := chomp(l.raw)
		n := &Node{Pos: l.pos, Raw: raw, comment: -1, eol: l.raw[len(raw):]}
		f.Nodes = append(f.Nodes, n)
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
			setFatal(n, l.pos, "General error in input file:  "+err.Error())
			continue
		}
		if len(n.Args) == 0 {
			setFatal(n, l.pos, "General error in input file:  list index out of range")
			continue
		}
		switch {
		case n.Args[0] == "%include":
			n.Kind = NodeInclude
			if len(n.Args) < 2 || n.Args[1] == "" {
				setFatal(n, l.pos, "Missing file name for %include")
				continue
			}
			p.include(f, n)
			continue
		case n.Args[0] == "%ksappend":
			n.Kind = NodeKsappend
			if len(n.Args) < 2 {
				setFatal(n, l.pos, "Illegal url for %ksappend: "+strings.TrimFunc(raw, pySpace))
				continue
			}
			p.include(f, n)
			continue
		case strings.HasPrefix(n.Args[0], "%"):
			n.Kind = NodeSection
			if !sectionNames[n.Args[0]] {
				setFatal(n, l.pos, "Unknown kickstart section: "+n.Args[0])
			}
			i = p.readSection(f, n, lines, i+1, setFatal) - 1
		}
	}
}

// readSection collects a section body starting at lines[i] and returns the
// index of the first line after the section.
func (p *parser) readSection(f *File, n *Node, lines []srcLine, i int, setFatal func(*Node, Pos, string)) int {
	for ; i < len(lines); i++ {
		l := lines[i]
		t := strings.TrimLeftFunc(l.raw, pySpace)
		if strings.HasPrefix(t, "%") {
			first := pyFields(l.raw)[0]
			if sectionNames[first] || first == "%end" || first == "%include" {
				toks, _, err := shlexSplit(l.raw, false)
				if err != nil {
					setFatal(n, l.pos, "General error in input file:  "+err.Error())
					n.Body = append(n.Body, bodyLine(l))
					continue
				}
				args := tokenValues(toks)
				switch {
				case len(args) > 0 && args[0] == "%end":
					n.End = &BodyLine{Pos: l.pos, Raw: chomp(l.raw)}
					return i + 1
				case len(args) > 0 && args[0] == "%include":
					bl := bodyLine(l)
					if len(args) < 2 || args[1] == "" {
						setFatal(n, l.pos, "Missing file name for %include")
					} else if p.opts.FollowIncludes {
						ref := resolveRef(l.pos.File, args[1])
						if b, prob := p.fetch(ref); prob != nil {
							prob.File, prob.Line = l.pos.File, l.pos.Line
							f.IncludeProblems = append(f.IncludeProblems, *prob)
						} else {
							for k, il := range splitLines(string(b)) {
								bl.Included = append(bl.Included, BodyLine{Pos: Pos{ref, k + 1}, Raw: chomp(il)})
							}
						}
					}
					n.Body = append(n.Body, bl)
					continue
				case len(args) > 0 && sectionNames[args[0]]:
					setFatal(n, l.pos, fmt.Sprintf("Section %s does not end with %%end.", n.Args[0]))
					return i
				}
			}
		}
		n.Body = append(n.Body, bodyLine(l))
	}
	last := n.Pos
	if len(lines) > 0 {
		last = lines[len(lines)-1].pos
	}
	if len(p.stack) == 1 {
		setFatal(n, last, fmt.Sprintf("Section %s does not end with %%end.", n.Args[0]))
	}
	return i
}

func bodyLine(l srcLine) BodyLine {
	raw := chomp(l.raw)
	return BodyLine{Pos: l.pos, Raw: raw, eol: l.raw[len(raw):]}
}

func (p *parser) include(f *File, n *Node) {
	if !p.opts.FollowIncludes {
		return
	}
	ref := resolveRef(n.Pos.File, n.Args[1])
	b, prob := p.fetch(ref)
	if prob != nil {
		prob.File, prob.Line = n.Pos.File, n.Pos.Line
		f.IncludeProblems = append(f.IncludeProblems, *prob)
		return
	}
	p.stack = append(p.stack, ref)
	n.Included = p.parseFile(b, ref)
	p.stack = p.stack[:len(p.stack)-1]
	f.IncludeProblems = append(f.IncludeProblems, n.Included.IncludeProblems...)
}
