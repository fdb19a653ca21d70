package syslog

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParse holds Parse to what the timeline and UI rely on, whatever
// arrives on port 514: no panic, priorities in range, text that is valid
// UTF-8 without control characters, and nothing longer than MaxLine.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"<142>Nov 22 02:15:52 vm anaconda: hello 3164",
		"<13>Nov 22 02:15:52 vm root[10804]: with pid",
		"<27>Mar  1 10:11:12 localhost dracut-initqueue[1219]: curl: (7) Failed to connect to 2001:db8:20::20: Network is unreachable",
		"<30>2026-03-01T10:11:12.345678+00:00 newbox NetworkManager[1102]: <info> device (ens3): state change",
		`<139>1 2026-11-22T02:15:52.929994+00:00 vm anaconda - MID [timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"] hello 5424`,
		"<13>1 - - root - - - nils",
		`92 <13>1 2026-11-22T02:15:52.940432+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"] oc`,
		"<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed",
		`<14>1 2026-03-01T10:11:12Z h app 42 - [x@1 v="a \"b\" ] c\\"] text`,
		"<13>Feb 29 2025 10:11:12 h app: x",
		"<189>Feb 28 2025 10:11:12 sw1 %LINK-3-UPDOWN: up",
		"<13>1 2026-03-01T10:11:12Z h app - - [unterminated",
		"<6>kernel: x\x00\x1b\xff",
		"hello", "<", "<1>", "<191>1 ", "9 <", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b, testSrc, testNow)
		if m.Received != testNow || m.Source != testSrc {
			t.Fatalf("Received/Source not kept: %+v", m)
		}
		if err == nil && (m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7) {
			t.Fatalf("priority out of range: %+v", m)
		}
		switch m.Format {
		case RFC3164, RFC5424:
			if err != nil {
				t.Fatalf("format %s with error %v", m.Format, err)
			}
		case Raw:
			if err == nil {
				t.Fatalf("raw message without an error: %+v", m)
			}
		default:
			t.Fatalf("format %q", m.Format)
		}
		for name, s := range map[string]string{"text": m.Text, "host": m.Hostname, "app": m.App,
			"procid": m.ProcID, "msgid": m.MsgID, "sd": m.StructuredData} {
			if !utf8.ValidString(s) {
				t.Fatalf("%s not UTF-8: %q", name, s)
			}
			if strings.ContainsFunc(s, func(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }) {
				t.Fatalf("%s has control characters: %q", name, s)
			}
			if len(s) > MaxLine*3 { // U+FFFD is 3 bytes for each invalid byte
				t.Fatalf("%s is %d bytes", name, len(s))
			}
		}
	})
}
