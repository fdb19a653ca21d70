package kickstart

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser, linter, formatter and
// rewriter. Invariants: nothing panics, Format is idempotent and does not
// change what the parser sees, and problems carry a line inside the file.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "ks", "*.ks"))
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(seed000))
	f.Add([]byte("%post\n  %end\n%pre\n"))
	f.Add([]byte("network --b=x '\n"))
	f.Add([]byte("part / --size=1 -- -5 --onpart=sda1\r\n\x0b%packages\n-\n@g --nodef --opt\n"))
	f.Add([]byte("%include\n%ksappend\n"))
	f.Fuzz(func(t *testing.T, src []byte) {
		file := ParseString(string(src), "f.ks")
		lines := len(splitLines(string(src)))
		for _, v := range Versions() {
			for _, p := range LintFile(file, v, LintOptions{}) {
				if p.Line < 0 || p.Line > lines || (p.Line == 0 && lines > 0) {
					t.Fatalf("%v: problem line %d outside 1..%d: %s", v, p.Line, lines, p)
				}
			}
		}
		out := Format(file)
		again := ParseString(string(out), "f.ks")
		if !sameWords(file, again) {
			t.Fatalf("Format changed the parse:\n%q\n%q", src, out)
		}
		if out2 := Format(again); !bytes.Equal(out, out2) {
			t.Fatalf("Format not idempotent:\n%q\n%q", out, out2)
		}
		if _, err := Rewrite(file, RewriteOptions{Platform: PlatformXen, Source: &Source{URL: "http://192.0.2.1/os"}, Version: RHEL9}); err != nil {
			t.Fatal(err)
		}
	})
}
