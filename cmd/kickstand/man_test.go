package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// The issue: there were no man pages. `kickstand man` (make man) writes a
// page for every command a user can run, from the same help and flags,
// and none for hidden ones.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runCLI(t, nil, "man", "--dir", dir); code != 0 {
		t.Fatalf("man: exit %d: %s", code, errOut)
	}
	var walk func(c *cobra.Command)
	n := 0
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub)
			}
		}
		page := filepath.Join(dir, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1")
		b, err := os.ReadFile(page)
		if err != nil {
			t.Errorf("no man page for %q: %v", c.CommandPath(), err)
			return
		}
		n++
		if !strings.Contains(string(b), `.TH "KICKSTAND" "1"`) || !strings.Contains(string(b), c.Short) {
			t.Errorf("%s: not a man page of %q:\n%s", page, c.CommandPath(), b)
		}
	}
	walk(newRootCmd())
	if n < 30 {
		t.Errorf("only %d pages", n)
	}
	list, _ := os.ReadFile(filepath.Join(dir, "kickstand-host-list.1"))
	if !strings.Contains(string(list), `output format: table, json or yaml`) {
		t.Errorf("kickstand-host-list.1 lacks the inherited -o:\n%s", list)
	}
	for _, hidden := range []string{"kickstand-man.1", "kickstand-test-boot-sandbox-serve.1"} {
		if _, err := os.Stat(filepath.Join(dir, hidden)); err == nil {
			t.Errorf("a page for hidden %s", hidden)
		}
	}
	// groff reads every page without a warning.
	if _, err := exec.LookPath("groff"); err == nil {
		pages, _ := filepath.Glob(filepath.Join(dir, "*.1"))
		out, err := exec.Command("groff", append([]string{"-man", "-Tutf8", "-ww", "-z"}, pages...)...).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("groff: %v\n%s", err, out)
		}
	}
}
