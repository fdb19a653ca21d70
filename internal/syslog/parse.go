package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxLine is the longest line kept; longer ones are cut. 8 KiB holds any
// installer traceback line while bounding what one datagram can cost.
const MaxLine = 8 << 10

// Formats reported in Message.Format.
const (
	RFC3164 = "rfc3164"
	RFC5424 = "rfc5424"
	Raw     = "raw" // a line whose declared format was broken; Text is everything after the PRI
)

// ErrEmpty is returned for a datagram with nothing in it but whitespace.
var ErrEmpty = errors.New("syslog: empty message")

// Message is one received syslog line.
type Message struct {
	Received           time.Time      // when kickstand read it
	Source             netip.AddrPort // sender, IPv4 unmapped
	Facility, Severity int
	Timestamp          time.Time // sender's clock; zero when the line had none
	Hostname           string
	App                string // RFC 5424 APP-NAME or the RFC 3164 tag without [pid]
	ProcID             string
	MsgID              string
	StructuredData     string // RFC 5424 SD elements as sent, "" for nil
	Text               string
	Format             string // RFC3164, RFC5424 or Raw
}

// Parse reads one syslog line. It never discards what was sent: when the
// line declares RFC 5424 but breaks it, the error says how and the returned
// Message still carries the priority and the rest of the line as Text
// (Format Raw). A line without a valid <PRI> is, as RFC 3164 §4.3.3 says a
// relay should treat it, a user.notice message whose text is the whole line.
// Timestamps without a year or zone (RFC 3164) are read in now's location,
// in the year that puts them closest before now.
func Parse(b []byte, src netip.AddrPort, now time.Time) (Message, error) {
	m := Message{Received: now, Source: netip.AddrPortFrom(src.Addr().Unmap(), src.Port())}
	if len(b) > MaxLine {
		b = b[:MaxLine]
	}
	b = bytes.TrimRight(b, "\r\n\x00 \t")
	b = stripOctetCount(b)
	if len(bytes.TrimSpace(b)) == 0 {
		m.Format = Raw
		return m, ErrEmpty
	}
	pri, rest, ok := parsePRI(b)
	if !ok {
		m.Facility, m.Severity, m.Format = 1, 5, RFC3164
		m.Text = clean(string(b))
		return m, nil
	}
	m.Facility, m.Severity = pri/8, pri%8
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' {
		if err := parse5424(&m, rest[2:]); err != nil {
			m.Timestamp, m.Hostname, m.App, m.ProcID, m.MsgID, m.StructuredData = time.Time{}, "", "", "", "", ""
			m.Format, m.Text = Raw, clean(string(rest))
			return m, fmt.Errorf("syslog rfc5424 from %s: %w", m.Source, err)
		}
		m.Format = RFC5424
		return m, nil
	}
	parse3164(&m, string(rest), now)
	m.Format = RFC3164
	return m, nil
}

// stripOctetCount removes an RFC 6587 length prefix ("92 <13>1 ..."), which
// util-linux logger --octet-count adds even to UDP datagrams.
func stripOctetCount(b []byte) []byte {
	i := 0
	for i < len(b) && i < 6 && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	if i > 0 && i+1 < len(b) && b[i] == ' ' && b[i+1] == '<' {
		return b[i+1:]
	}
	return b
}

func parsePRI(b []byte) (int, []byte, bool) {
	if len(b) < 3 || b[0] != '<' {
		return 0, nil, false
	}
	end := bytes.IndexByte(b[:min(len(b), 5)], '>')
	if end < 2 {
		return 0, nil, false
	}
	n, err := strconv.Atoi(string(b[1:end]))
	if err != nil || n < 0 || n > 191 || b[1] == '+' || b[1] == '-' {
		return 0, nil, false
	}
	return n, b[end+1:], true
}

// parse5424 reads the header after "<PRI>1 ". RFC 5424 leaves no room for
// guessing, so anything out of shape is an error.
func parse5424(m *Message, b []byte) error {
	fields := make([]string, 0, 5)
	for len(fields) < 5 {
		sp := bytes.IndexByte(b, ' ')
		if sp <= 0 {
			return fmt.Errorf("header has %d of 6 fields", len(fields)+1)
		}
		fields = append(fields, string(b[:sp]))
		b = b[sp+1:]
	}
	if fields[0] != "-" {
		t, err := time.Parse(time.RFC3339Nano, fields[0])
		if err != nil {
			return fmt.Errorf("timestamp %q: %w", fields[0], err)
		}
		m.Timestamp = t
	}
	nil5424 := func(s string) string {
		if s == "-" {
			return ""
		}
		return clean(s)
	}
	m.Hostname, m.App, m.ProcID, m.MsgID = nil5424(fields[1]), nil5424(fields[2]), nil5424(fields[3]), nil5424(fields[4])
	sd, rest, err := splitSD(b)
	if err != nil {
		return err
	}
	if sd != "-" {
		m.StructuredData = clean(sd)
	}
	if len(rest) > 0 {
		if rest[0] != ' ' {
			return errors.New("no space between structured data and message")
		}
		rest = bytes.TrimPrefix(rest[1:], []byte("\xef\xbb\xbf"))
	}
	m.Text = clean(string(rest))
	return nil
}

// splitSD cuts the STRUCTURED-DATA field off b: "-" or one or more
// [id param="value" ...] elements, where values may contain escaped \" \\ \]
// and unescaped spaces and brackets.
func splitSD(b []byte) (string, []byte, error) {
	if len(b) == 0 {
		return "", nil, errors.New("structured data missing")
	}
	if b[0] == '-' {
		return "-", b[1:], nil
	}
	i := 0
	for i < len(b) && b[i] == '[' {
		end, err := sdElementEnd(b, i)
		if err != nil {
			return "", nil, err
		}
		i = end
	}
	if i == 0 {
		return "", nil, fmt.Errorf("structured data starts with %q", b[0])
	}
	return string(b[:i]), b[i:], nil
}

// sdElementEnd returns the index just past the ']' closing the element that
// starts at b[i].
func sdElementEnd(b []byte, i int) (int, error) {
	inValue := false
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case inValue && c == '\\':
			i++ // an escaped byte cannot end the value
		case c == '"':
			inValue = !inValue
		case !inValue && c == ']':
			return i + 1, nil
		}
	}
	return 0, errors.New("structured data element not closed")
}

var months = map[string]time.Month{
	"Jan": time.January, "Feb": time.February, "Mar": time.March, "Apr": time.April,
	"May": time.May, "Jun": time.June, "Jul": time.July, "Aug": time.August,
	"Sep": time.September, "Oct": time.October, "Nov": time.November, "Dec": time.December,
}

// parse3164 reads "[TIMESTAMP ][HOSTNAME ][TAG[PID]: ]TEXT". Each part is
// optional in what real senders emit, so each is recognised by its shape:
// a hostname is only taken after a timestamp (as RFC 3164 orders them) and
// only when the next word is not already a tag.
func parse3164(m *Message, s string, now time.Time) {
	ts, rest, hasTS := cutTimestamp(s, now)
	if hasTS {
		m.Timestamp = ts
		s = rest
	}
	word, after, _ := strings.Cut(s, " ")
	if app, pid, ok := tag(word); ok {
		m.App, m.ProcID = app, pid
		m.Text = clean(after)
		return
	}
	if hasTS && isHostname(word) {
		m.Hostname = word
		s = after
		word, after, _ = strings.Cut(s, " ")
		if app, pid, ok := tag(word); ok {
			m.App, m.ProcID = app, pid
			s = after
		}
	}
	m.Text = clean(s)
}

// cutTimestamp recognises "Mmm dd hh:mm:ss[.frac]", "Mmm dd yyyy hh:mm:ss"
// and RFC 3339 (rsyslog's forward format), followed by a space or the end.
func cutTimestamp(s string, now time.Time) (time.Time, string, bool) {
	word, rest, _ := strings.Cut(s, " ")
	if len(word) >= 19 && word[4] == '-' && word[10] == 'T' {
		if t, err := time.Parse(time.RFC3339Nano, word); err == nil {
			return t, rest, true
		}
		if t, err := time.ParseInLocation("2006-01-02T15:04:05.999999999", word, now.Location()); err == nil {
			return t, rest, true
		}
		return time.Time{}, "", false
	}
	mon, ok := months[word]
	if !ok {
		return time.Time{}, "", false
	}
	rest = strings.TrimLeft(rest, " ") // "Jan  2" pads the day with a space
	dayS, rest, _ := strings.Cut(rest, " ")
	day, err := strconv.Atoi(dayS)
	if err != nil || day < 1 || day > 31 || len(dayS) > 2 {
		return time.Time{}, "", false
	}
	year := 0
	clock, rest, _ := strings.Cut(rest, " ")
	if len(clock) == 4 {
		if y, err := strconv.Atoi(clock); err == nil {
			year = y
			clock, rest, _ = strings.Cut(rest, " ")
		}
	}
	c, err := time.Parse("15:04:05.999999999", clock)
	if err != nil {
		return time.Time{}, "", false
	}
	at := func(y int) (time.Time, bool) {
		t := time.Date(y, mon, day, c.Hour(), c.Minute(), c.Second(), c.Nanosecond(), now.Location())
		return t, t.Day() == day // Feb 30 and friends normalise into the next month
	}
	if year != 0 {
		t, ok := at(year)
		return t, rest, ok
	}
	// No year: take the latest one not more than a day ahead of now, which
	// keeps a "Dec 31" line read on Jan 1 in last year.
	for y := now.Year() + 1; y >= now.Year()-4; y-- {
		if t, ok := at(y); ok && !t.After(now.Add(24*time.Hour)) {
			return t, rest, true
		}
	}
	return time.Time{}, "", false
}

// tag recognises "app:", "app[pid]:" and "app[pid]" (syslog(3) forms).
func tag(w string) (app, pid string, ok bool) {
	w, colon := strings.CutSuffix(w, ":")
	if open := strings.IndexByte(w, '['); open > 0 && strings.HasSuffix(w, "]") {
		app, pid = w[:open], w[open+1:len(w)-1]
		if pid == "" || strings.ContainsAny(pid, "[]") {
			return "", "", false
		}
	} else if colon {
		app = w
	} else {
		return "", "", false
	}
	if app == "" || len(app) > 64 || strings.ContainsAny(app, "[]:\"=<>") || !utf8.ValidString(app) {
		return "", "", false
	}
	for _, r := range app {
		if r < 0x21 || r == 0x7f {
			return "", "", false
		}
	}
	return app, pid, true
}

func isHostname(w string) bool {
	if w == "" || len(w) > 255 {
		return false
	}
	for _, r := range w {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune(".-_:%", r):
		default:
			return false
		}
	}
	return true
}

// clean makes text safe to store and show: valid UTF-8 and no control
// characters (a stray newline or escape would corrupt a timeline row).
func clean(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.Map(func(r rune) rune {
		if (r < 0x20 && r != '\t') || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

var facilities = [...]string{"kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news",
	"uucp", "cron", "authpriv", "ftp", "ntp", "security", "console", "solaris-cron",
	"local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7"}

var severities = [...]string{"emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"}

// FacilityName returns the conventional keyword (as in syslog.conf).
func FacilityName(f int) string {
	if f >= 0 && f < len(facilities) {
		return facilities[f]
	}
	return strconv.Itoa(f)
}

// SeverityName returns the conventional keyword (as in syslog.conf).
func SeverityName(s int) string {
	if s >= 0 && s < len(severities) {
		return severities[s]
	}
	return strconv.Itoa(s)
}
