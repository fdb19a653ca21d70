package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/kickstart"
)

// `kickstand ks lint -` reads the kickstart from stdin; includes are
// followed by default and the flags reach the linter.
func TestKSLintCommandLine(t *testing.T) {
	runIn := func(stdin string, args ...string) (string, error) {
		cmd := newRootCmd()
		var out bytes.Buffer
		cmd.SetOut(&out)
		cmd.SetErr(&out)
		cmd.SetIn(strings.NewReader(stdin))
		cmd.SetArgs(args)
		err := cmd.ExecuteContext(context.Background())
		return out.String(), err
	}
	var ee *kickstart.ExitError
	out, err := runIn("lang en_US\nnetwork --device=eth0 \\\n  --bootproto=dhcp\n", "ks", "lint", "--release", "rhel9", "-")
	if !errors.As(err, &ee) || !strings.Contains(out, "<stdin>:3: error: Unknown command: --bootproto=dhcp") || !strings.Contains(out, "no line continuation") {
		t.Fatalf("stdin lint: %v\n%s", err, out)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "frag.ks"), []byte("zerombr\n"), 0o644)
	main := filepath.Join(dir, "main.ks")
	os.WriteFile(main, []byte("lang en_US\n%include frag.ks\n%include /tmp/part-include\n"), 0o644)
	if out, err := runIn("", "ks", "lint", "--release", "rhel9", main); !errors.As(err, &ee) || !strings.Contains(out, "main.ks:3: error: %include /tmp/part-include: file not found") {
		t.Fatalf("missing include: %v\n%s", err, out)
	}
	if out, err := runIn("", "ks", "lint", "--release", "rhel9", "--allow-missing", "/tmp/*", main); err != nil || !strings.Contains(out, "warning: %include /tmp/part-include") {
		t.Fatalf("--allow-missing: %v\n%s", err, out)
	}
	if out, err := runIn("", "ks", "lint", "--release", "rhel9", "--follow-includes=false", main); err != nil || out != "" {
		t.Fatalf("--follow-includes=false: %v\n%s", err, out)
	}
}

// The real binary reads `ks lint -` from its standard input (the issue
// said it did not), and -o json|yaml gives the report: the same problems,
// valid false, exit 1; --output json as before.
func TestKSLintStdinBinary(t *testing.T) {
	bin := buildBinary(t)
	ks := "lang en_US\nbogus\n"
	cmd := exec.Command(bin, "ks", "lint", "--release", "rhel9", "-")
	cmd.Stdin = strings.NewReader(ks)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "<stdin>:2: error: Unknown command: bogus") {
		t.Fatalf("ks lint - (binary): %v\n%s", err, out)
	}
	var r kickstart.LintReport
	structured(t, 1, &r, "ks", "lint", "--release", "rhel9", filepath.Join(writeKS(t, ks)))
	if r.Valid || len(r.Problems) != 1 || r.Problems[0].Line != 2 || r.Release != "RHEL9" {
		t.Errorf("ks lint -o json: %+v", r)
	}
	o, _, code := runCLI(t, strings.NewReader(ks), "ks", "lint", "--output", "json", "-")
	if code != 1 || !strings.Contains(o, `"file": "<stdin>"`) {
		t.Errorf("ks lint --output json -: exit %d\n%s", code, o)
	}
}

func writeKS(t *testing.T, body string) string {
	p := filepath.Join(t.TempDir(), "a.ks")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
