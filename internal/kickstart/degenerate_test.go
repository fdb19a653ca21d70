package kickstart

import (
	"runtime"
	"strings"
	"testing"
)

// TestDegenerateInput: the shapes testdata/crafted has ksvalidator's
// verdict for (empty, comment-only, NUL, CRLF, BOM, not UTF-8,
// unterminated sections) get a clear message; the crafted corpus checks
// the verdicts and lines, this checks what an operator reads.
func TestDegenerateInput(t *testing.T) {
	for _, c := range []struct {
		name, src string
		want      string // first problem, "" for none
	}{
		{"empty", "", "e.ks:0: error: General error in input file:  Empty file"},
		{"whitespace", " \n\t\n", "e.ks:1: error: General error in input file:  Empty file"},
		{"comments", "# a\n# b\n", "e.ks:1: warning: the kickstart has no commands: an installer given it waits at its interactive screens"},
		{"nul", "lang en_US\n\x00\n", `e.ks:2: error: Unknown command: \x00`},
		{"crlf", "lang en_US\r\n%packages\r\n@core\r\n%end\r\n", ""},
		{"bom", "\ufefflang en_US\n", "e.ks:1: error: Unknown command: \ufefflang (hint: the file starts with a UTF-8 byte order mark; save it without one)"},
		{"latin1", "lang en_US\n# caf\xe9\n", "e.ks:2: error: General error in input file:  'utf-8' codec can't decode byte 0xe9 in position 16: invalid continuation byte (hint: the file is not UTF-8; convert it (for example with iconv -t UTF-8))"},
		{"unterminated", "lang en_US\n%post\necho hi\n", "e.ks:3: error: Section %post does not end with %end."},
		{"unterminated-next", "%packages\n@core\n%post\n%end\n", "e.ks:3: error: Section %packages does not end with %end."},
	} {
		probs := Lint([]byte(c.src), "e.ks", RHEL9, LintOptions{})
		got := ""
		if len(probs) > 0 {
			got = probs[0].String()
		}
		if got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
}

// TestHostileInputBounded: 10 MB single lines and 10 MB of lines are
// linted in one pass: memory grows with the input, not with its square,
// at most maxProblems problems are kept, and no message quotes a 10 MB
// word in full. Each input has the shape of a crafted-corpus file whose
// verdict ksvalidator gave (it takes minutes on the 10 MB versions).
func TestHostileInputBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("10 MB inputs")
	}
	const mb = 10 << 20
	for _, c := range []struct {
		name, src string
		invalid   bool
	}{
		{"comment", "#" + strings.Repeat("x", mb) + "\nlang en_US\n", false},               // 10mb-comment.ks.gz
		{"hostname", "network --hostname=" + strings.Repeat("a", mb) + "\n", false},        // long-hostname.ks
		{"unknown-word", strings.Repeat("z", mb) + "\n", true},                             // unknown-command.ks
		{"options", "part / " + strings.Repeat("--size=1 ", mb/9) + "\n", false},           // many-options.ks
		{"lines", strings.Repeat("network --device=eth0 --bootproto=dhcp\n", mb/40), true}, // network-dup-device.ks
		{"words", "%packages " + strings.Repeat("x ", mb/2) + "\n%end\n", true},            // unrecognized arguments
		{"nul", strings.Repeat("\x00", mb) + "\n", true},                                   // nul-line.ks
		{"package", "%packages\n" + strings.Repeat("p", mb) + "\n%end\n", false},           // 10mb-package.ks.gz
		{"post", "%post\necho " + strings.Repeat("y", mb) + "\n", true},                    // 10mb-post-unterminated.ks.gz
		{"dashes", "part / " + strings.Repeat("-- ", mb/3) + "\n", true},                   // part-extra-arg.ks
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		probs := Lint([]byte(c.src), "big.ks", RHEL9, LintOptions{})
		runtime.ReadMemStats(&after)
		if got := HasErrors(probs, false); got != c.invalid {
			t.Errorf("%s: invalid=%v, want %v", c.name, got, c.invalid)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 64*uint64(len(c.src)) {
			t.Errorf("%s: %d MB allocated for %d MB of input", c.name, alloc>>20, len(c.src)>>20)
		}
		if len(probs) > maxProblems+1 {
			t.Errorf("%s: %d problems kept", c.name, len(probs))
		}
		for _, p := range probs {
			if len(p.Message) > maxMessage+64 || len(p.Hint) > maxMessage {
				t.Errorf("%s: %d-byte message", c.name, len(p.Message))
			}
		}
	}
}

// TestProblemCap: past maxProblems, one last problem says how many more.
func TestProblemCap(t *testing.T) {
	src := strings.Repeat("bogus\n", maxProblems+10)
	probs := Lint([]byte(src), "c.ks", RHEL9, LintOptions{})
	if len(probs) != maxProblems+1 {
		t.Fatalf("%d problems", len(probs))
	}
	last := probs[maxProblems]
	if last.Line != maxProblems+1 || last.Severity != SeverityError || !strings.HasPrefix(last.Message, "10 more problems from here on are not shown") {
		t.Fatalf("summary: %s", last)
	}
}
