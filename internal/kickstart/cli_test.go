package kickstart

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLintCommand(t *testing.T) {
	ctx := context.Background()
	bad := writeTemp(t, "seed.ks", seed000)
	var out bytes.Buffer
	err := LintCommand{Release: "rhel7", Out: &out}.Run(ctx, []string{bad})
	if err != nil || out.Len() != 0 {
		t.Fatalf("rhel7: err %v, output %q", err, out.String())
	}
	out.Reset()
	err = LintCommand{Release: "rhel9", Out: &out}.Run(ctx, []string{bad})
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 1 {
		t.Fatalf("rhel9: want exit 1, got %v", err)
	}
	if !strings.HasPrefix(out.String(), bad+":3: error: The option --isUtc will be deprecated") {
		t.Fatalf("rhel9 output: %q", out.String())
	}
	out.Reset()
	if err := (LintCommand{Release: "rhel9", AllowDeprecated: true, Out: &out}).Run(ctx, []string{bad}); err != nil {
		t.Fatalf("allow-deprecated: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), ":3: warning: The option --isUtc") {
		t.Fatalf("allow-deprecated output: %q", out.String())
	}

	warnOnly := writeTemp(t, "w.ks", seed000+"rootpw --plaintext again\n")
	out.Reset()
	if err := (LintCommand{Release: "rhel7", Out: &out}).Run(ctx, []string{warnOnly}); err != nil {
		t.Fatalf("warnings must not fail: %v", err)
	}
	if err := (LintCommand{Release: "rhel7", Strict: true, Out: &out}).Run(ctx, []string{warnOnly}); !errors.As(err, &ee) {
		t.Fatalf("strict must fail on warnings: %v", err)
	}

	out.Reset()
	err = LintCommand{Release: "rhel9", JSON: true, Out: &out}.Run(ctx, []string{bad})
	if !errors.As(err, &ee) {
		t.Fatalf("json: %v", err)
	}
	var rep LintReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("json output: %v\n%s", err, out.String())
	}
	if rep.Release != "RHEL9" || rep.Valid || len(rep.Problems) == 0 || rep.Problems[0].Line != 3 || rep.Problems[0].Severity != SeverityError {
		t.Fatalf("json report: %+v", rep)
	}
	if err := (LintCommand{Release: "rhel99", Out: &out}).Run(ctx, []string{bad}); err == nil || errors.As(err, &ee) {
		t.Fatalf("bad release should be a plain error: %v", err)
	}
}

func TestRewriteAndFmtCommands(t *testing.T) {
	ctx := context.Background()
	src, err := os.ReadFile(filepath.Join("testdata", "ks", "80-xen-seed001.ks"))
	if err != nil {
		t.Fatal(err)
	}
	p := writeTemp(t, "80-xen-seed001.ks", string(src))
	var out bytes.Buffer
	if err := (RewriteCommand{Platform: "xen", Source: "nfs=192.0.2.1:/var/xen/install", Release: "rhel6", Out: &out}).Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "+nfs --server=192.0.2.1 --dir=/var/xen/install") {
		t.Fatalf("diff: %s", out.String())
	}
	if err := (RewriteCommand{Platform: "xen", Source: "nfs=192.0.2.1:/var/xen/install", Write: true}).Run(ctx, p); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(p)
	want, _ := os.ReadFile(filepath.Join("testdata", "golden", "seed001-xen-nfs.ks"))
	if string(got) != string(want) {
		t.Fatalf("--write result differs from golden:\n%s", UnifiedDiff("want", "got", want, got))
	}
	if err := (RewriteCommand{Platform: "sparc"}).Run(ctx, p); err == nil {
		t.Fatal("bad platform accepted")
	}

	f := writeTemp(t, "f.ks", "lang   en_US  \n")
	out.Reset()
	if err := (FmtCommand{Out: &out}).Run(ctx, f); err != nil || out.String() != "lang en_US\n" {
		t.Fatalf("fmt: %v %q", err, out.String())
	}
}

// TestLintCommandIncludes: ks lint follows %include and %ksappend next to
// the file and in --include-dir, reports a fragment's problems at the
// fragment's path and line, fails on a missing include unless
// --allow-missing matches it, and reads "-" from stdin.
func TestLintCommandIncludes(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	frags := t.TempDir()
	write := func(d, name, content string) string {
		p := filepath.Join(d, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write(dir, "net.ks", "# fragment\nnetwork --device=eth0 --bootproto=magic\n")
	write(frags, "disk.ks", "zerombr\nclearpart --all\n")
	main := write(dir, "main.ks", "lang en_US\n%include net.ks\n%include disk.ks\n%include /tmp/part-include\n")
	lint := func(c LintCommand, files ...string) (string, error) {
		var out bytes.Buffer
		c.Release, c.FollowIncludes, c.Out = "rhel9", true, &out
		err := c.Run(ctx, files)
		return out.String(), err
	}
	out, err := lint(LintCommand{IncludeDirs: []string{frags}}, main)
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("want exit 1: %v\n%s", err, out)
	}
	net := filepath.Join(dir, "net.ks")
	if !strings.Contains(out, net+":2: error: argument --bootproto: invalid choice: 'magic'") {
		t.Errorf("fragment problem not at the fragment's path and line:\n%s", out)
	}
	if !strings.Contains(out, main+":4: error: %include /tmp/part-include: file not found") || !strings.Contains(out, "--allow-missing '/tmp/*'") {
		t.Errorf("missing include must be an error that names --allow-missing:\n%s", out)
	}
	if strings.Contains(out, "disk.ks") {
		t.Errorf("disk.ks is in --include-dir:\n%s", out)
	}
	out, _ = lint(LintCommand{AllowMissing: []string{"/tmp/*"}}, main)
	if !strings.Contains(out, main+":4: warning: %include /tmp/part-include: not found, not checked (allowed by --allow-missing /tmp/*") {
		t.Errorf("allowed missing include:\n%s", out)
	}
	if !strings.Contains(out, main+":3: error: %include disk.ks: file not found") {
		t.Errorf("without --include-dir disk.ks is missing:\n%s", out)
	}
	if _, err := lint(LintCommand{AllowMissing: []string{"[bad"}}, main); err == nil || errors.As(err, &ee) {
		t.Errorf("a bad pattern is a usage error: %v", err)
	}
	// stdin: relative includes resolve from the working directory
	out, err = lint(LintCommand{Stdin: strings.NewReader("lang en_US\nbogus\n")}, "-")
	if !errors.As(err, &ee) || out != StdinName+":2: error: Unknown command: bogus\n" {
		t.Fatalf("stdin: %v %q", err, out)
	}
	if _, err := lint(LintCommand{Stdin: strings.NewReader("lang en_US\n")}, "-"); err != nil {
		t.Fatalf("valid stdin: %v", err)
	}
}
