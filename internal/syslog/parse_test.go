package syslog

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var (
	testNow = time.Date(2026, time.March, 1, 10, 11, 30, 0, time.UTC)
	testSrc = netip.MustParseAddrPort("192.0.2.10:40000")
)

func TestParseShapes(t *testing.T) {
	ts := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name string
		line string
		want Message
	}{
		{
			name: "util-linux logger --rfc3164 to a remote host",
			line: "<142>Nov 22 02:15:52 vm anaconda: hello 3164",
			want: Message{Facility: 17, Severity: 6, Timestamp: ts("2025-11-22T02:15:52Z"), Hostname: "vm", App: "anaconda", Text: "hello 3164", Format: RFC3164},
		},
		{
			name: "logger -i adds the pid to the tag",
			line: "<13>Nov 22 02:15:52 vm root[10804]: with pid",
			want: Message{Facility: 1, Severity: 5, Timestamp: ts("2025-11-22T02:15:52Z"), Hostname: "vm", App: "root", ProcID: "10804", Text: "with pid", Format: RFC3164},
		},
		{
			name: "dracut in the initrd, rsyslog traditional forward format (seed 000 race #1)",
			line: "<27>Mar  1 10:11:12 localhost dracut-initqueue[1219]: curl: (7) Failed to connect to 2001:db8:20::20: Network is unreachable",
			want: Message{Facility: 3, Severity: 3, Timestamp: ts("2026-03-01T10:11:12Z"), Hostname: "localhost", App: "dracut-initqueue", ProcID: "1219", Text: "curl: (7) Failed to connect to 2001:db8:20::20: Network is unreachable", Format: RFC3164},
		},
		{
			name: "anaconda stage2 over rsyslog with an RFC 3339 timestamp",
			line: "<30>2026-03-01T10:11:12.345678+00:00 newbox NetworkManager[1102]: <info>  [1709287872.3456] device (ens3): state change: activated -> deactivating",
			want: Message{Facility: 3, Severity: 6, Timestamp: ts("2026-03-01T10:11:12.345678Z"), Hostname: "newbox", App: "NetworkManager", ProcID: "1102", Text: "<info>  [1709287872.3456] device (ens3): state change: activated -> deactivating", Format: RFC3164},
		},
		{
			name: "long dotted tag (Anaconda DBus modules)",
			line: "<15>Mar  1 10:11:12 localhost org.fedoraproject.Anaconda.Modules.Storage[1969]: DEBUG:blivet: trying to set new default fstype to 'xfs'",
			want: Message{Facility: 1, Severity: 7, Timestamp: ts("2026-03-01T10:11:12Z"), Hostname: "localhost", App: "org.fedoraproject.Anaconda.Modules.Storage", ProcID: "1969", Text: "DEBUG:blivet: trying to set new default fstype to 'xfs'", Format: RFC3164},
		},
		{
			name: "BusyBox/glibc style: timestamp and tag, no hostname",
			line: "<6>Mar  1 10:11:12 kernel: e1000: eth0 NIC Link is Up 1000 Mbps",
			want: Message{Facility: 0, Severity: 6, Timestamp: ts("2026-03-01T10:11:12Z"), App: "kernel", Text: "e1000: eth0 NIC Link is Up 1000 Mbps", Format: RFC3164},
		},
		{
			name: "RFC 3164 example: hostname is an address and there is no tag",
			line: "<13>Feb  5 17:32:18 192.0.2.99 Use the BFG!",
			want: Message{Facility: 1, Severity: 5, Timestamp: ts("2026-02-05T17:32:18Z"), Hostname: "192.0.2.99", Text: "Use the BFG!", Format: RFC3164},
		},
		{
			name: "IPv6 hostname",
			line: "<13>Feb  5 17:32:18 2001:db8::10 anaconda: x",
			want: Message{Facility: 1, Severity: 5, Timestamp: ts("2026-02-05T17:32:18Z"), Hostname: "2001:db8::10", App: "anaconda", Text: "x", Format: RFC3164},
		},
		{
			name: "no timestamp, only a tag",
			line: "<14>anaconda: starting installer",
			want: Message{Facility: 1, Severity: 6, App: "anaconda", Text: "starting installer", Format: RFC3164},
		},
		{
			name: "bare priority and text",
			line: "<11>something broke",
			want: Message{Facility: 1, Severity: 3, Text: "something broke", Format: RFC3164},
		},
		{
			name: "fractional seconds",
			line: "<13>Mar  1 10:11:12.250 h app: x",
			want: Message{Facility: 1, Severity: 5, Timestamp: ts("2026-03-01T10:11:12.25Z"), Hostname: "h", App: "app", Text: "x", Format: RFC3164},
		},
		{
			name: "timestamp with a year (network gear)",
			line: "<189>Feb 28 2025 10:11:12 sw1 %LINK-3-UPDOWN: Interface Gi0/1, changed state to up",
			want: Message{Facility: 23, Severity: 5, Timestamp: ts("2025-02-28T10:11:12Z"), Hostname: "sw1", App: "%LINK-3-UPDOWN", Text: "Interface Gi0/1, changed state to up", Format: RFC3164},
		},
		{
			name: "no priority at all (RFC 3164 4.3.3: user.notice)",
			line: "hello world",
			want: Message{Facility: 1, Severity: 5, Text: "hello world", Format: RFC3164},
		},
		{
			name: "priority out of range is text",
			line: "<192>x",
			want: Message{Facility: 1, Severity: 5, Text: "<192>x", Format: RFC3164},
		},
		{
			name: "trailing newline and NUL, embedded escape and tab",
			line: "<13>Mar  1 10:11:12 h app: \x1b[0mred\tok\r\n\x00",
			want: Message{Facility: 1, Severity: 5, Timestamp: ts("2026-03-01T10:11:12Z"), Hostname: "h", App: "app", Text: " [0mred\tok", Format: RFC3164},
		},
		{
			name: "invalid UTF-8 is replaced",
			line: "<13>app: caf\xe9",
			want: Message{Facility: 1, Severity: 5, App: "app", Text: "caf\uFFFD", Format: RFC3164},
		},
		{
			name: "util-linux logger --rfc5424 with structured data and msgid",
			line: `<139>1 2026-11-22T02:15:52.929994+00:00 vm anaconda - MID [timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"] hello 5424`,
			want: Message{Facility: 17, Severity: 3, Timestamp: ts("2026-11-22T02:15:52.929994Z"), Hostname: "vm", App: "anaconda", MsgID: "MID", StructuredData: `[timeQuality tzKnown="1" isSynced="0"][zoo@123 tiger="hungry"]`, Text: "hello 5424", Format: RFC5424},
		},
		{
			name: "logger --rfc5424=notq,notime,nohost: nil values",
			line: "<13>1 - - root - - - nils",
			want: Message{Facility: 1, Severity: 5, App: "root", Text: "nils", Format: RFC5424},
		},
		{
			name: "logger --octet-count over UDP",
			line: `92 <13>1 2026-11-22T02:15:52.940432+00:00 vm root - - [timeQuality tzKnown="1" isSynced="0"] oc`,
			want: Message{Facility: 1, Severity: 5, Timestamp: ts("2026-11-22T02:15:52.940432Z"), Hostname: "vm", App: "root", StructuredData: `[timeQuality tzKnown="1" isSynced="0"]`, Text: "oc", Format: RFC5424},
		},
		{
			name: "RFC 5424 example 1: BOM before the message",
			line: "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \xef\xbb\xbf'su root' failed for lonvick on /dev/pts/8",
			want: Message{Facility: 4, Severity: 2, Timestamp: ts("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com", App: "su", MsgID: "ID47", Text: "'su root' failed for lonvick on /dev/pts/8", Format: RFC5424},
		},
		{
			name: "RFC 5424 example 2: zone offset and procid",
			line: "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.",
			want: Message{Facility: 20, Severity: 5, Timestamp: ts("2003-08-24T12:14:15.000003Z"), Hostname: "192.0.2.1", App: "myproc", ProcID: "8710", Text: "%% It's time to make the do-nuts.", Format: RFC5424},
		},
		{
			name: "RFC 5424 example 4: structured data and no message",
			line: `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`,
			want: Message{Facility: 20, Severity: 5, Timestamp: ts("2003-10-11T22:14:15.003Z"), Hostname: "mymachine.example.com", App: "evntslog", MsgID: "ID47", StructuredData: `[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]`, Format: RFC5424},
		},
		{
			name: "structured data values with escapes, brackets and spaces",
			line: `<14>1 2026-03-01T10:11:12Z h app 42 - [x@1 v="a \"b\" ] c\\" w="]"] text [not sd]`,
			want: Message{Facility: 1, Severity: 6, Timestamp: ts("2026-03-01T10:11:12Z"), Hostname: "h", App: "app", ProcID: "42", StructuredData: `[x@1 v="a \"b\" ] c\\" w="]"]`, Text: "text [not sd]", Format: RFC5424},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.line), testSrc, testNow)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			tt.want.Received, tt.want.Source = testNow, testSrc
			if !got.Timestamp.Equal(tt.want.Timestamp) {
				t.Errorf("Timestamp = %v, want %v", got.Timestamp, tt.want.Timestamp)
			}
			got.Timestamp, tt.want.Timestamp = time.Time{}, time.Time{}
			if got != tt.want {
				t.Errorf("Parse(%q)\n got %+v\nwant %+v", tt.line, got, tt.want)
			}
		})
	}
}

func TestParseBroken5424KeepsTheLine(t *testing.T) {
	for _, line := range []string{
		"<13>1 yesterday h app - - - x",
		`<13>1 2026-03-01T10:11:12Z h app - - [unterminated x="y`,
		"<13>1 2026-03-01T10:11:12Z h app - - x",
		"<13>1 2026-03-01T10:11:12Z h app",
		"<13>1 2026-03-01T10:11:12Z h app - - -x",
	} {
		m, err := Parse([]byte(line), testSrc, testNow)
		if err == nil {
			t.Errorf("Parse(%q): no error, got %+v", line, m)
			continue
		}
		if m.Format != Raw || m.Facility != 1 || m.Severity != 5 || m.Text != line[4:] || m.Hostname != "" {
			t.Errorf("Parse(%q) = %+v, want the raw line kept with its priority", line, m)
		}
	}
}

func TestParseEmpty(t *testing.T) {
	for _, line := range []string{"", "\n", " \r\n\x00"} {
		if _, err := Parse([]byte(line), testSrc, testNow); !errors.Is(err, ErrEmpty) {
			t.Errorf("Parse(%q) err = %v, want ErrEmpty", line, err)
		}
	}
}

func TestParseYearInference(t *testing.T) {
	newYear := time.Date(2026, time.January, 1, 0, 0, 5, 0, time.UTC)
	m, err := Parse([]byte("<13>Dec 31 23:59:58 h app: late"), testSrc, newYear)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2025, time.December, 31, 23, 59, 58, 0, time.UTC); !m.Timestamp.Equal(want) {
		t.Errorf("Dec 31 read on Jan 1 = %v, want %v", m.Timestamp, want)
	}
	// A sender whose clock is a few hours ahead stays in this year.
	m, _ = Parse([]byte("<13>Jan  1 05:00:00 h app: early"), testSrc, newYear)
	if m.Timestamp.Year() != 2026 {
		t.Errorf("slightly-ahead clock: %v, want 2026", m.Timestamp)
	}
	// Feb 29 only exists in leap years: take the latest one.
	m, _ = Parse([]byte("<13>Feb 29 12:00:00 h app: leap"), testSrc, newYear)
	if m.Timestamp.Year() != 2024 || m.Timestamp.Day() != 29 {
		t.Errorf("Feb 29 = %v, want 2024-02-29", m.Timestamp)
	}
	// The sender's zone is unknown: read it in now's location.
	loc := time.FixedZone("X", 2*3600)
	m, _ = Parse([]byte("<13>Mar  1 10:11:12 h app: zoned"), testSrc, testNow.In(loc))
	if _, off := m.Timestamp.Zone(); off != 2*3600 {
		t.Errorf("zone offset = %d, want now's", off)
	}
}

func TestParseSourceAndLimits(t *testing.T) {
	mapped := netip.MustParseAddrPort("[::ffff:192.0.2.7]:514")
	m, err := Parse([]byte("<13>x"), mapped, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if m.Source != netip.MustParseAddrPort("192.0.2.7:514") {
		t.Errorf("Source = %v, want the IPv4 address unmapped", m.Source)
	}
	long := "<13>app: " + strings.Repeat("a", 3*MaxLine)
	m, err = Parse([]byte(long), testSrc, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(m.Text), MaxLine-len("<13>app: "); got != want {
		t.Errorf("long line text = %d bytes, want %d", got, want)
	}
}

func TestNames(t *testing.T) {
	if FacilityName(17) != "local1" || SeverityName(3) != "err" || FacilityName(99) != "99" || SeverityName(-1) != "-1" {
		t.Error("facility/severity names wrong")
	}
}
