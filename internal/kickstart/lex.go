package kickstart

import (
	"errors"
	"strings"
	"unicode"
	"unicode/utf8"
)

// pySpace reports whether r is whitespace to Python's str.isspace, which
// pykickstart uses to decide that a line is blank. Go's unicode.IsSpace
// misses the ASCII separators U+001C..U+001F.
func pySpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// splitLines splits s the way Python's str.splitlines(True) does, because
// pykickstart numbers lines that way: \r, \v, \f, \x1c-\x1e, \x85, U+2028
// and U+2029 end a line too. Each returned line keeps its terminator.
func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		end := -1
		switch r {
		case '\n', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
			end = i + size
		case '\r':
			end = i + 1
			if i+1 < len(s) && s[i+1] == '\n' {
				end = i + 2
			}
		}
		if end < 0 {
			i += size
			continue
		}
		lines = append(lines, s[start:end])
		start, i = end, end
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}

// chomp removes one line terminator (as splitLines keeps it).
func chomp(line string) string {
	if strings.HasSuffix(line, "\r\n") {
		return line[:len(line)-2]
	}
	r, size := utf8.DecodeLastRuneInString(line)
	switch r {
	case '\n', '\r', '\v', '\f', 0x1c, 0x1d, 0x1e, 0x85, 0x2028, 0x2029:
		return line[:len(line)-size]
	}
	return line
}

// isBlankOrComment mirrors pykickstart's test: whitespace only, or the
// first non-space character is '#'.
func isBlankOrComment(line string) bool {
	t := strings.TrimLeftFunc(line, pySpace)
	return t == "" || t[0] == '#'
}

// pyFields is Python's str.split() with no argument.
func pyFields(s string) []string { return strings.FieldsFunc(s, pySpace) }

var (
	errNoClosingQuote = errors.New("No closing quotation")
	errNoEscapedChar  = errors.New("No escaped character")
)

// token is one shell word with the byte span it came from, so the printer
// can reproduce the author's quoting exactly.
type token struct {
	Val        string
	Start, End int
}

// shlexSplit splits one line like Python's shlex.split(line, comments=...)
// in POSIX mode: single and double quotes, backslash escapes (kept inside
// double quotes unless they escape '"' or '\'), and with comments a '#'
// ends the current word and the line. Only space, tab, CR and LF separate
// words, as in shlex. Unbalanced quotes are an error, as they are fatal
// to ksvalidator. comment is the byte offset of the comment, or -1.
func shlexSplit(line string, comments bool) (toks []token, comment int, err error) {
	const (
		stSpace = iota
		stWord
		stQuote
		stEscape
	)
	comment = -1
	state, escaped := stSpace, stSpace
	var quote rune
	// A word without quotes or escapes is its source text; only the others
	// are built in cur. plain says the word so far is line[start:i].
	var cur strings.Builder
	inTok, quoted, plain := false, false, true
	start := 0
	toks = make([]token, 0, countWords(line))
	wordLen := func(i int) int {
		if plain {
			return i - start
		}
		return cur.Len()
	}
	unplain := func(i int) {
		if plain {
			cur.WriteString(line[start:i])
			plain = false
		}
	}
	emit := func(end int) {
		val := line[start:end]
		if !plain {
			val = cur.String()
		}
		toks = append(toks, token{Val: val, Start: start, End: end})
		cur.Reset()
		inTok, quoted, plain = false, false, true
	}
	isWS := func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' || r == '\n' }
	for i, r := range line {
		switch state {
		case stSpace:
			switch {
			case isWS(r):
			case comments && r == '#':
				return toks, i, nil
			case r == '\\':
				start, inTok, plain = i, true, false
				escaped, state = stWord, stEscape
			case r == '\'' || r == '"':
				start, inTok, plain = i, true, false
				quote, state = r, stQuote
			default:
				start, inTok = i, true
				state = stWord
			}
		case stWord:
			switch {
			case isWS(r):
				emit(i)
				state = stSpace
			case comments && r == '#':
				if wordLen(i) > 0 || quoted {
					emit(i)
				}
				return toks, i, nil
			case r == '\'' || r == '"':
				unplain(i)
				quote, state = r, stQuote
			case r == '\\':
				unplain(i)
				escaped, state = stWord, stEscape
			case !plain:
				cur.WriteRune(r)
			}
		case stQuote:
			quoted = true
			switch {
			case r == quote:
				state = stWord
			case r == '\\' && quote == '"':
				escaped, state = stQuote, stEscape
			default:
				cur.WriteRune(r)
			}
		case stEscape:
			if escaped == stQuote && r != quote && r != '\\' {
				cur.WriteRune('\\')
			}
			cur.WriteRune(r)
			state = escaped
		}
	}
	switch state {
	case stQuote:
		return toks, comment, errNoClosingQuote
	case stEscape:
		return toks, comment, errNoEscapedChar
	}
	if inTok && (wordLen(len(line)) > 0 || quoted) {
		emit(len(line))
	}
	return toks, comment, nil
}

// countWords bounds the number of words shlexSplit can find, so the token
// slice is allocated once even for a 10 MB line.
func countWords(line string) int {
	n, inWord := 0, false
	for i := 0; i < len(line); i++ {
		ws := line[i] == ' ' || line[i] == '\t' || line[i] == '\r' || line[i] == '\n'
		if !ws && !inWord {
			n++
		}
		inWord = !ws
	}
	return n
}

func tokenValues(toks []token) []string {
	out := make([]string, len(toks))
	for i, t := range toks {
		out[i] = t.Val
	}
	return out
}

// quoteArg quotes s for a kickstart line so that shlexSplit returns it
// unchanged; used when a rewrite builds new arguments.
func quoteArg(s string) string {
	if s == "" {
		return "''"
	}
	if !strings.ContainsAny(s, " \t\r\n'\"\\#") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}
