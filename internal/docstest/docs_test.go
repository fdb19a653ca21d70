// Package docstest runs the commands the README and docs/ show, as written:
// every fenced block whose info string is "sh runnable" runs in bash
// against a fresh directory, so a documented command that stops working
// fails the build instead of a new user.
package docstest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// block is one runnable shell block of a document.
type block struct {
	file string
	line int // of the opening fence
	text string
}

// fence matches an opening fence of a runnable shell block.
var fence = regexp.MustCompile("^```sh runnable\\s*$")

// runnable extracts the runnable blocks of a Markdown file.
func runnable(t *testing.T, path string) []block {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []block
	lines := strings.Split(string(b), "\n")
	for i := 0; i < len(lines); i++ {
		if !fence.MatchString(lines[i]) {
			continue
		}
		start := i
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("%s:%d: runnable block never closed", path, start+1)
		}
		out = append(out, block{file: path, line: start + 1, text: strings.Join(body, "\n") + "\n"})
	}
	return out
}

// TestRunnableDocs runs each runnable block in bash with -e and pipefail,
// in an empty directory holding bin/kickstand (also on PATH) and the
// repository's examples/, with $KICKSTAND_CONFIG and $KICKSTAND_DATA
// pointing into it, so no block touches /etc or /var.
func TestRunnableDocs(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	docs = append([]string{filepath.Join(root, "README.md")}, docs...)
	var blocks []block
	for _, d := range docs {
		blocks = append(blocks, runnable(t, d)...)
	}
	if len(runnable(t, docs[0])) == 0 {
		t.Fatal("README.md has no runnable block: this test would check nothing")
	}

	bin := filepath.Join(t.TempDir(), "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "kickstand"), "./cmd/kickstand")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, b := range blocks {
		name := filepath.Base(b.file) + ":" + strconv.Itoa(b.line)
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Symlink(bin, filepath.Join(dir, "bin")); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(root, "examples"), filepath.Join(dir, "examples")); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", b.text)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(),
				"PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"),
				"KICKSTAND_CONFIG="+filepath.Join(dir, "etc", "kickstand.yaml"),
				"KICKSTAND_DATA="+filepath.Join(dir, "data"),
			)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Errorf("%s: the runnable block fails (%v):\n%s\n--- output\n%s", name, err, b.text, out.String())
			}
		})
	}
}
