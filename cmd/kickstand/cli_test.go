package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the command line as main does and returns what it printed
// and its exit status.
func runCLI(t *testing.T, stdin io.Reader, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var o, e bytes.Buffer
	code = runMain(args, stdin, &o, &e)
	return o.String(), e.String(), code
}

// The issue: `host lsit` printed help and exited 0. Every way of calling
// kickstand wrongly now exits 2, says what was wrong on stderr and prints
// nothing on stdout, at every level of the command tree.
func TestUsageMistakesExit2(t *testing.T) {
	cfg := writeMinimalConfig(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"host", "lsit"}, `unknown command "lsit" for "kickstand host"`},
		{[]string{"hots", "list"}, `unknown command "hots" for "kickstand"`},
		{[]string{"ks", "lnt", "x.ks"}, `unknown command "lnt" for "kickstand ks"`},
		{[]string{"image", "updates", "biuld"}, `unknown command "biuld"`},
		{[]string{"host", "list", "--bogus"}, "unknown flag: --bogus"},
		{[]string{"--bogus", "version"}, "unknown flag: --bogus"},
		{[]string{"render", "kickstart", "a", "b"}, "accepts between 1 and 2 arg(s)"},
		{[]string{"doctor", "extra"}, "unknown command"},
		{[]string{"image", "pack", "dir"}, `required flag(s) "out" not set`},
		{[]string{"help", "host", "lsit"}, `unknown help topic "host lsit"`},
		{[]string{"completion", "bsh"}, `unknown command "bsh" for "kickstand completion"`},
		{[]string{"-o", "xml", "version"}, `-o "xml": want table, json or yaml`},
	} {
		args := append([]string{"--config", cfg}, tc.args...)
		out, errOut, code := runCLI(t, nil, args...)
		if code != 2 || out != "" || !strings.Contains(errOut, tc.want) {
			t.Errorf("kickstand %s: exit %d, stdout %q, stderr %q; want exit 2, nothing on stdout, %q on stderr",
				strings.Join(tc.args, " "), code, out, errOut, tc.want)
		}
	}
	if _, errOut, _ := runCLI(t, nil, "host", "lsit"); !strings.Contains(errOut, "Did you mean this?") || !strings.Contains(errOut, "\tlist\n") {
		t.Errorf("host lsit: no suggestion: %q", errOut)
	}
	if out, _, code := runCLI(t, nil, "help", "host", "list"); code != 0 || !strings.Contains(out, "List hosts") {
		t.Errorf("kickstand help host list: exit %d, %q", code, out)
	}
	// A group called bare still shows its help, and succeeds.
	if out, _, code := runCLI(t, nil, "host"); code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("kickstand host: exit %d, %q", code, out)
	}
}

// writeMinimalConfig writes a config with one host that loads without any
// files on disk, and returns its path.
func writeMinimalConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, []byte("server:\n  address_v4: 192.0.2.1\n  data_dir: data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// $KICKSTAND_CONFIG and $KICKSTAND_DATA set the defaults of --config and
// --data (a flag still wins), so a shell or unit file names them once.
func TestConfigFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "k.yaml")
	t.Setenv("KICKSTAND_CONFIG", cfg)
	t.Setenv("KICKSTAND_DATA", filepath.Join(dir, "state"))
	if _, e, code := runCLI(t, nil, "init"); code != 0 {
		t.Fatalf("init with $KICKSTAND_CONFIG: %s", e)
	}
	if _, err := os.Stat(cfg); err != nil {
		t.Fatal("init did not write $KICKSTAND_CONFIG")
	}
	if _, e, code := runCLI(t, nil, "token", "create", "--name", "env"); code != 0 {
		t.Fatalf("token create: %s", e)
	}
	if _, err := os.Stat(filepath.Join(dir, "state", "kickstand.db")); err != nil {
		t.Errorf("the store is not in $KICKSTAND_DATA: %v", err)
	}
	other := writeMinimalConfig(t)
	if out, _, code := runCLI(t, nil, "--config", other, "token", "list"); code != 0 || !strings.Contains(out, "env") {
		t.Errorf("--config with $KICKSTAND_DATA: exit %d\n%s", code, out)
	}
}

// The issue: -o yaml was accepted and printed text. A command that prints
// no data refuses -o json|yaml (exit 2); every command in the list that
// takes them exists (a rename would leave the list behind).
func TestStructuredOnlyWhereData(t *testing.T) {
	root := newRootCmd()
	for _, name := range structuredCommands() {
		c, rest, err := root.Find(strings.Fields(name))
		if err != nil || len(rest) > 0 || c == root || !c.Runnable() {
			t.Errorf("structuredCommands names %q, which is not a command", name)
		}
	}
	cfg := writeMinimalConfig(t)
	for _, args := range [][]string{
		{"image", "pack", "dir", "--out", "x.img"}, {"host", "rm", "h"},
		{"init"}, {"serve"}, {"ks", "fmt", "x.ks"},
	} {
		for _, f := range []string{"json", "yaml"} {
			_, e, code := runCLI(t, nil, append([]string{"--config", cfg, "-o", f}, args...)...)
			if code != 2 || !strings.Contains(e, "prints no data to format") {
				t.Errorf("%s -o %s: exit %d, %q", strings.Join(args, " "), f, code, e)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "templates")); err == nil {
		t.Error("init -o json ran")
	}
}
