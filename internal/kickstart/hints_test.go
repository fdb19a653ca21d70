package kickstart

import (
	"strings"
	"testing"
)

// TestHints: common mistakes get a hint naming the likely cause; the
// error itself stays ksvalidator's.
func TestHints(t *testing.T) {
	for _, c := range []struct {
		v    Version
		src  string
		line int
		msg  string
		hint string
	}{
		// seed 000's network line was continued with a backslash
		{RHEL9, "network --bootproto=static --device=eth0 \\\n  --ip=192.0.2.5\n", 1, "unrecognized arguments: \n", "kickstart has no line continuation; join the lines"},
		{RHEL9, "network --bootproto=static --device=eth0 \\\n  --ip=192.0.2.5\n", 2, "Unknown command: --ip=192.0.2.5", "line 1 ends with a backslash, but kickstart has no line continuation; join the lines"},
		{RHEL9, "\ufefflang en_US\n", 1, "Unknown command: \ufefflang", "the file starts with a UTF-8 byte order mark; save it without one"},
		{RHEL8, "timesource --ntp-server=192.0.2.1\n", 1, "Unknown command: timesource", "timesource is a command of RHEL9, RHEL10, F40, not RHEL8"},
		{RHEL9, "bootloadr --location=mbr\n", 1, "Unknown command: bootloadr", "did you mean bootloader?"},
		{RHEL9, "install\n", 1, "install has been removed.", "installing is the default; remove the line"},
		{RHEL10, "authconfig --enableshadow\n", 1, "authconfig has been removed.", "use authselect instead; pykickstart maps no authconfig options to it, so translate them by hand"},
		{RHEL6, "network --device=eth0 --ipv6gateway=2001:db8::1\n", 1, "unrecognized arguments: --ipv6gateway=2001:db8::1", "network --ipv6gateway is in RHEL7, RHEL8, RHEL9, RHEL10, F40, not RHEL6"},
		{RHEL10, "timezone Etc/UTC --isUtc\n", 1, "unrecognized arguments: --isUtc", "--isUtc is spelt --utc in RHEL10"},
		{F40, "timezone Etc/UTC --isUtc\n", 1, "Ignoring deprecated option on line 1: The --isUtc option has been deprecated and no longer has any effect. It may be removed from future releases, which will result in a fatal error from kickstart. Please modify your kickstart file to remove this option.", "--isUtc is spelt --utc in F40"},
		{RHEL8, "%packages --inst-langs=en\n%end\n", 1, "unrecognized arguments: --inst-langs=en", "--inst-langs is spelt --instLangs in RHEL8"},
		{RHEL9, "network --bootprot=dhcp --devise=eth0\n", 1, "unrecognized arguments: --devise=eth0", "did you mean --device?"},
	} {
		probs := Lint([]byte(c.src), "h.ks", c.v, LintOptions{})
		var got *Problem
		for i := range probs {
			if probs[i].Line == c.line && probs[i].Severity == SeverityError {
				got = &probs[i]
				break
			}
		}
		if got == nil {
			t.Errorf("%v %q: no error on line %d: %v", c.v, c.src, c.line, probs)
			continue
		}
		if got.Message != c.msg || got.Hint != c.hint {
			t.Errorf("%v %q line %d:\n got %q (hint %q)\nwant %q (hint %q)", c.v, c.src, c.line, got.Message, got.Hint, c.msg, c.hint)
		}
	}
	// one problem, one line of output: control characters are escaped
	p := Problem{File: "h.ks", Line: 1, Severity: SeverityError, Message: "unrecognized arguments: \n", Hint: "x"}
	if s := p.String(); strings.Contains(s, "\n") || s != `h.ks:1: error: unrecognized arguments: \n (hint: x)` {
		t.Errorf("String() = %q", s)
	}
}
