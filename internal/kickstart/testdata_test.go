package kickstart

import (
	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOwnCorpus checks our own kickstarts (testdata/ks) against
// testdata/expect.tsv: for every file and release, the verdict, and for
// invalid ones the exact first-error line and message. The expectations
// were produced by pykickstart 3.74's parser run the way ksvalidator runs
// it (see testdata/README.md), not by this package.
func TestOwnCorpus(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "expect.tsv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	files := map[string]bool{}
	failing := map[string]bool{}
	rows := 0
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) != 5 {
			t.Fatalf("expect.tsv: bad row %q", sc.Text())
		}
		name, rel, exit, lineS, msg := cols[0], cols[1], cols[2], cols[3], cols[4]
		v, err := ParseVersion(rel)
		if err != nil {
			t.Fatal(err)
		}
		files[name] = true
		rows++
		src, err := os.ReadFile(filepath.Join("testdata", "ks", name))
		if err != nil {
			t.Fatal(err)
		}
		probs := Lint(src, name, v, LintOptions{})
		var first *Problem
		for i := range probs {
			if probs[i].Severity == SeverityError {
				first = &probs[i]
				break
			}
		}
		if exit == "0" {
			if first != nil {
				t.Errorf("%s %v: ksvalidator accepts it, we report %s", name, v, first)
			}
			continue
		}
		if first == nil {
			t.Errorf("%s %v: ksvalidator rejects it (line %s: %s), we accept it", name, v, lineS, msg)
			continue
		}
		if lineS != "" {
			line, _ := strconv.Atoi(lineS)
			got := strings.NewReplacer("\n", " ", "\t", " ").Replace(first.Message)
			if first.Line != line || got != msg {
				t.Errorf("%s %v: want line %d %q, got %s", name, v, line, msg, first)
				continue
			}
			failing[name] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kickstarts, %d (file, release) rows, %d files fail somewhere with an exact line and message", len(files), rows, len(failing))
	if len(files) < 60 || len(failing) < 15 {
		t.Errorf("corpus too small: %d files (want >= 60), %d failing (want >= 15)", len(files), len(failing))
	}
}
