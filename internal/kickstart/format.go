package kickstart

import (
	"strings"
)

// Format prints a parsed kickstart back. Commands, section headers and
// %end lines get single spaces between words with the author's quoting
// kept; blank and comment lines lose surrounding whitespace; script and
// certificate bodies are printed verbatim because whitespace there can
// matter (heredocs, Python). %packages lines are trimmed. Included files
// are not inlined: the %include line is printed as written, and a
// section's lines read from a fragment are left out.
func Format(f *File) []byte {
	var b strings.Builder
	for _, n := range f.Nodes {
		if n.spliced {
			continue
		}
		switch n.Kind {
		case NodeBlank:
			b.WriteString("\n")
		case NodeComment:
			b.WriteString(strings.TrimFunc(n.Raw, pySpace))
			b.WriteString("\n")
		case NodeCommand, NodeInclude, NodeKsappend, NodeSection, NodeIgnored:
			if wordsInTerminator(n) {
				// a word ends in an odd line terminator: print verbatim
				// (eol is empty only on the last line, left unterminated)
				b.WriteString(n.Raw + n.eol)
			} else {
				b.WriteString(formatWords(n.Raw, n.toks, n.comment))
				b.WriteString("\n")
			}
			if n.Kind != NodeSection {
				continue
			}
			packages := n.Args[0] == "%packages"
			for _, l := range n.Body {
				if l.Included {
					continue
				}
				if packages {
					b.WriteString(strings.TrimFunc(l.Raw, pySpace))
				} else {
					b.WriteString(l.Raw)
				}
				b.WriteString(newline(l.eol))
			}
			if n.End != nil {
				toks, comment, err := shlexSplit(n.End.Raw, true)
				if err != nil {
					b.WriteString(n.End.Raw)
				} else {
					b.WriteString(formatWords(n.End.Raw, toks, comment))
				}
				b.WriteString("\n")
			}
		}
	}
	return []byte(b.String())
}

// newline keeps an unusual line terminator (\v, \f, U+2028...), which
// can change how the next line is read, and normalises the rest to \n.
func newline(eol string) string {
	switch eol {
	case "", "\n", "\r\n", "\r":
		return "\n"
	}
	return eol
}

// wordsInTerminator reports lines that cannot be re-spelled safely: a
// word runs into the line terminator, or (on a last line without one)
// adding "\n" would change the words, as after a trailing backslash.
func wordsInTerminator(n *Node) bool {
	for _, t := range n.toks {
		if t.End > len(n.Raw) {
			return true
		}
	}
	if n.eol == "" {
		a, _, errA := shlexSplit(n.Raw, true)
		b, _, errB := shlexSplit(n.Raw+"\n", true)
		if (errA == nil) != (errB == nil) || len(a) != len(b) {
			return true
		}
		for i := range a {
			if a[i].Val != b[i].Val {
				return true
			}
		}
	}
	return false
}

// formatWords joins the words of a line, each spelled as in the source,
// with one space, and keeps a trailing comment. A line that did not lex
// is printed unchanged.
func formatWords(raw string, toks []token, comment int) string {
	if len(toks) == 0 && comment < 0 {
		return strings.TrimFunc(raw, pySpace)
	}
	if _, _, err := shlexSplit(raw, true); err != nil {
		return raw
	}
	parts := make([]string, 0, len(toks)+1)
	for _, t := range toks {
		parts = append(parts, raw[t.Start:t.End])
	}
	if comment >= 0 {
		parts = append(parts, strings.TrimRightFunc(raw[comment:], pySpace))
	}
	return strings.Join(parts, " ")
}
