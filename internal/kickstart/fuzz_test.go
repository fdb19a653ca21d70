package kickstart

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary text to the parser, linter, formatter and
// rewriter. The second input is a fragment: every %include and %ksappend
// reads it (a target naming "missing" is absent), so includes, nested
// includes, cycles and fragments that leave sections open are fuzzed too.
// Invariants: nothing panics, problems carry a line inside the file they
// name, Format is idempotent and does not change what the parser sees, and
// the release rewrite is idempotent.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob(filepath.Join("testdata", "ks", "*.ks"))
	for _, s := range seeds {
		if b, err := os.ReadFile(s); err == nil {
			f.Add(b, []byte(nil))
		}
	}
	// the crafted include cases, each with the fragment it names
	incs, _ := filepath.Glob(filepath.Join("testdata", "crafted", "inc*.ks"))
	ksappends, _ := filepath.Glob(filepath.Join("testdata", "crafted", "ksappend*.ks"))
	for _, s := range append(incs, ksappends...) {
		main, err := os.ReadFile(s)
		if err != nil {
			continue
		}
		frag := []byte(nil)
		for _, w := range strings.Fields(string(main)) {
			if b, err := os.ReadFile(filepath.Join("testdata", "crafted", w)); err == nil {
				frag = b
				break
			}
		}
		f.Add(main, frag)
	}
	f.Add([]byte(seed000), []byte(nil))
	f.Add([]byte("%post\n  %end\n%pre\n"), []byte(nil))
	f.Add([]byte("network --b=x '\n"), []byte(nil))
	f.Add([]byte("part / --size=1 -- -5 --onpart=sda1\r\n\x0b%packages\n-\n@g --nodef --opt\n"), []byte(nil))
	f.Add([]byte("%include\n%ksappend\n"), []byte(nil))
	f.Add([]byte("%include a.ks\nzerombr\n%packages\n%include b.ks\n%end\n"), []byte("%post\necho\n%include c.ks\n"))
	f.Add([]byte("%ksappend x.ks\n%ksappend missing.ks\n"), []byte("selinux --enforcing"))
	f.Add([]byte("%include missing.ks\n%include x.ks\n"), []byte("\xff\n"))
	f.Fuzz(func(t *testing.T, src, frag []byte) {
		fetch := func(_ context.Context, ref string) ([]byte, error) {
			if strings.Contains(ref, "missing") {
				return nil, fmt.Errorf("%s: %w", ref, fs.ErrNotExist)
			}
			return frag, nil
		}
		popts := ParseOptions{FollowIncludes: true, Fetch: fetch, MaxDepth: 3, MaxBytes: 1 << 20}
		lines := map[string]int{"f.ks": len(splitLines(string(src)))}
		fragLines := len(splitLines(string(frag)))
		followed := Parse(context.Background(), src, "f.ks", popts)
		for _, v := range Versions() {
			for _, p := range LintFile(followed, v, LintOptions{}) {
				n, ok := lines[p.File]
				if !ok {
					n = fragLines
				}
				if p.Line < 0 || p.Line > n || (p.Line == 0 && n > 0 && !p.Kickstand) {
					t.Fatalf("%v: problem line %d outside 1..%d: %s", v, p.Line, n, p)
				}
			}
		}
		file := ParseString(string(src), "f.ks")
		for _, v := range Versions() {
			for _, p := range LintFile(file, v, LintOptions{}) {
				if n := lines["f.ks"]; p.Line < 0 || p.Line > n || (p.Line == 0 && n > 0) {
					t.Fatalf("%v: problem line %d outside 1..%d: %s", v, p.Line, n, p)
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
		if !bytes.Equal(Format(followed), out) {
			t.Fatalf("Format of a file read with its includes differs:\n%q\n%q", Format(followed), out)
		}
		rw := RewriteOptions{Platform: PlatformXen, Source: &Source{URL: "http://192.0.2.1/os"}, Version: RHEL9}
		once, err := Rewrite(file, rw)
		if err != nil {
			t.Fatal(err)
		}
		twice, err := Rewrite(ParseString(string(once), "f.ks"), rw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(once, twice) {
			t.Fatalf("rewrite not idempotent:\n%q\n%q", once, twice)
		}
	})
}
