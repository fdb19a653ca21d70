package kickstart

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
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

type verdict struct {
	file    string
	version Version
	exit    int
	line    int
	message string
}

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
	first := true
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 5 {
			continue
		}
		v, err := ParseVersion(cols[1])
		if err != nil {
			t.Fatalf("VERDICTS.tsv version %q: %v", cols[1], err)
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

// TestCorpusAgreement runs the linter over the real-world corpus and
// compares with pykickstart 3.74's ksvalidator verdicts.
func TestCorpusAgreement(t *testing.T) {
	dir := filepath.Join(sharedDir(t), "kickstart-corpus")
	verdicts := readVerdicts(t, filepath.Join(dir, "VERDICTS.tsv"))
	agree, lineTotal, lineAgree, msgAgree := 0, 0, 0, 0
	for _, vd := range verdicts {
		src, err := os.ReadFile(filepath.Join(dir, vd.file))
		if err != nil {
			t.Fatal(err)
		}
		probs := Lint(src, vd.file, vd.version, LintOptions{})
		var first *Problem
		for i := range probs {
			if probs[i].Severity == SeverityError {
				first = &probs[i]
				break
			}
		}
		invalid := first != nil
		if invalid == (vd.exit != 0) {
			agree++
		} else {
			got := "valid"
			if first != nil {
				got = first.String()
			}
			t.Logf("VERDICT %s %v: ksvalidator exit=%d line=%d %q; kickstand: %s", vd.file, vd.version, vd.exit, vd.line, vd.message, got)
		}
		if vd.exit != 0 && vd.line > 0 {
			lineTotal++
			if first != nil && first.Line == vd.line {
				lineAgree++
				if first.Message == vd.message {
					msgAgree++
				} else {
					t.Logf("MESSAGE %s %v line %d: want %q got %q", vd.file, vd.version, vd.line, vd.message, first.Message)
				}
			} else if first != nil {
				t.Logf("LINE %s %v: want line %d %q; got %s", vd.file, vd.version, vd.line, vd.message, first)
			}
		}
	}
	rate := float64(agree) / float64(len(verdicts))
	t.Logf("verdict agreement: %d/%d = %.1f%%", agree, len(verdicts), 100*rate)
	t.Logf("first-error line agreement: %d/%d = %.1f%% (same message: %d)", lineAgree, lineTotal, 100*float64(lineAgree)/float64(max(lineTotal, 1)), msgAgree)
	if rate < 0.97 {
		t.Errorf("verdict agreement %.1f%% is below 97%%", 100*rate)
	}
}
