package kickstart

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// sharedDir finds /work/shared (the peers' shared data), or skips.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("KICKSTAND_SHARED")
	if dir == "" {
		dir = filepath.Join("..", "..", "..", "shared")
	}
	if _, err := os.Stat(filepath.Join(dir, "kickstart-corpus", "VERDICTS.tsv")); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("kickstart corpus not found under %s: %v", dir, err)
		}
		t.Skipf("kickstart corpus not found under %s (set KICKSTAND_SHARED): %v", dir, err)
	}
	return dir
}

// verdict is one ksvalidator result: line 0 when ksvalidator named none.
type verdict struct {
	file    string
	version Version
	exit    int
	line    int
	message string
}

// readVerdicts reads file/version/exit/line/message rows (a header row,
// if any, is skipped).
func readVerdicts(t testing.TB, path string) []verdict {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []verdict
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 5 || cols[1] == "version" {
			continue
		}
		v, err := ParseVersion(cols[1])
		if err != nil {
			t.Fatalf("%s: version %q: %v", path, cols[1], err)
		}
		exit, _ := strconv.Atoi(cols[2])
		line, _ := strconv.Atoi(cols[3])
		out = append(out, verdict{cols[0], v, exit, line, cols[4]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// readCorpusFile reads a corpus kickstart; .gz files keep 10 MB inputs
// small in the repository.
func readCorpusFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(path, ".gz") {
		return b
	}
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	b, err = io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// printable escapes a message the way tools/oracle.py does.
func printable(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\n' || r == '\t':
			b.WriteByte(' ')
		case unicode.IsPrint(r) || r == ' ':
			b.WriteRune(r)
		case r < 0x100:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

type agreement struct {
	rows, verdicts       int
	lineRows, lines, msg int
}

func (a agreement) verdictRate() float64 { return float64(a.verdicts) / float64(max(a.rows, 1)) }
func (a agreement) lineRate() float64    { return float64(a.lines) / float64(max(a.lineRows, 1)) }

// agree lints every (file, release) of a corpus and counts how often
// kickstand's verdict and first error line are ksvalidator's. Each miss
// is logged.
func agree(t *testing.T, dir string, verdicts []verdict, opts LintOptions) agreement {
	t.Helper()
	var a agreement
	for _, vd := range verdicts {
		path := filepath.Join(dir, vd.file)
		src := readCorpusFile(t, path)
		name := strings.TrimSuffix(path, ".gz")
		first := firstError(Lint(src, name, vd.version, opts))
		a.rows++
		if (first != nil) == (vd.exit != 0) {
			a.verdicts++
		} else {
			got := "valid"
			if first != nil {
				got = first.String()
			}
			t.Logf("VERDICT %s %v: ksvalidator exit=%d line=%d %q; kickstand: %s", vd.file, vd.version, vd.exit, vd.line, vd.message, got)
		}
		if vd.exit == 0 || vd.line == 0 {
			continue
		}
		a.lineRows++
		switch {
		case first == nil:
		case first.ksvalidatorLine() == vd.line:
			a.lines++
			if msg := printable(first.Message); msg == vd.message || (strings.HasSuffix(vd.message, "...") && strings.HasPrefix(msg, strings.TrimSuffix(vd.message, "..."))) {
				a.msg++
			} else {
				t.Logf("MESSAGE %s %v line %d: ksvalidator %q; kickstand %q", vd.file, vd.version, vd.line, vd.message, msg)
			}
		default:
			t.Logf("LINE %s %v: ksvalidator line %d %q; kickstand %s", vd.file, vd.version, vd.line, vd.message, first)
		}
	}
	t.Logf("verdict agreement: %d/%d = %.1f%%", a.verdicts, a.rows, 100*a.verdictRate())
	t.Logf("first-error line agreement: %d/%d = %.1f%% (same message: %d)", a.lines, a.lineRows, 100*a.lineRate(), a.msg)
	if a.verdictRate() < 0.99 {
		t.Errorf("verdict agreement %.1f%% is below 99%%", 100*a.verdictRate())
	}
	if a.lineRate() < 0.97 {
		t.Errorf("first-error line agreement %.1f%% is below 97%%", 100*a.lineRate())
	}
	return a
}

func firstError(probs []Problem) *Problem {
	for i := range probs {
		if probs[i].Severity == SeverityError {
			return &probs[i]
		}
	}
	return nil
}

// TestCorpusAgreement runs the linter over the real-world corpus and
// compares with pykickstart 3.74's ksvalidator verdicts (run without -i,
// so includes are not followed here either).
func TestCorpusAgreement(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "kickstart-corpus")
	a := agree(t, dir, readVerdicts(t, filepath.Join(dir, "VERDICTS.tsv")), LintOptions{})
	if a.rows < 400 {
		t.Errorf("only %d verdicts read", a.rows)
	}
}

// TestCraftedCorpus: testdata/crafted holds kickstarts written to hit
// every handler check kickstand mirrors, includes and %ksappend, hostile
// input and common mistakes; testdata/crafted.tsv is ksvalidator -i's
// verdict for each on every release (tools/oracle.py).
func TestCraftedCorpus(t *testing.T) {
	verdicts := readVerdicts(t, filepath.Join("testdata", "crafted.tsv"))
	files := map[string]bool{}
	for _, v := range verdicts {
		files[v.file] = true
	}
	if len(files) < 150 {
		t.Fatalf("crafted corpus has %d kickstarts, want at least 150", len(files))
	}
	agree(t, filepath.Join("testdata", "crafted"), verdicts, LintOptions{Parse: ParseOptions{FollowIncludes: true}})
}
