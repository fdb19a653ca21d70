package kickstart

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestRewriteLintsClean is the property of ks rewrite --release R: for
// every corpus kickstart and every release, the rewritten kickstart has no
// lint error the rewrite could have fixed, that is none caused by a
// command or option another release takes (removed, deprecated, renamed
// or not yet added). What is left is listed by cause. The rewrite is also
// idempotent.
func TestRewriteLintsClean(t *testing.T) {
	var files []string
	for _, pat := range []string{"testdata/ks/*.ks", "testdata/crafted/*.ks", "testdata/crafted/*.ks.gz"} {
		m, _ := filepath.Glob(pat)
		files = append(files, m...)
	}
	if dir := os.Getenv("KICKSTAND_SHARED"); dir != "" || !testing.Short() {
		if dir == "" {
			dir = filepath.Join("..", "..", "..", "shared")
		}
		m, _ := filepath.Glob(filepath.Join(dir, "kickstart-corpus", "real", "*.ks"))
		files = append(files, m...)
	}
	if testing.Short() {
		files = slicesWithout(files, ".gz")
	}
	left := map[string]int{}
	runs, fixed := 0, 0
	for _, path := range files {
		src := readCorpusFile(t, path)
		name := filepath.Base(strings.TrimSuffix(path, ".gz"))
		for _, v := range Versions() {
			runs++
			before := errorsOnly(Lint(src, name, v, LintOptions{}))
			out, _, err := RewriteSource(src, name, RewriteOptions{Version: v})
			if err != nil {
				t.Fatalf("%s %v: %v", name, v, err)
			}
			after := errorsOnly(Lint(out, name, v, LintOptions{}))
			if len(before) > 0 && len(after) == 0 {
				fixed++
			}
			for _, p := range after {
				if why := rewriteShouldFix(p); why != "" {
					t.Errorf("%s %v: rewrite left %s (%s)", name, v, p, why)
					continue
				}
				left[cause(p)]++
			}
			again, _, err := RewriteSource(out, name, RewriteOptions{Version: v})
			if err != nil || string(again) != string(out) {
				t.Errorf("%s %v: rewrite is not idempotent:\n%s", name, v, UnifiedDiff("once", "twice", out, again))
			}
		}
	}
	t.Logf("%d kickstart x release rewrites; %d went from failing to lint clean", runs, fixed)
	var causes []string
	for c, n := range left {
		causes = append(causes, fmt.Sprintf("%5d  %s", n, c))
	}
	sort.Strings(causes)
	t.Logf("errors left after rewrite, by cause (not a release difference):\n\t%s", strings.Join(causes, "\n\t"))
	if runs < 6*150 {
		t.Errorf("only %d rewrites", runs)
	}
}

// rewriteShouldFix says why a problem left after a release rewrite was
// the rewrite's to fix, or "".
func rewriteShouldFix(p Problem) string {
	switch p.kind {
	case kindRemovedCommand, kindDeprecatedCommand:
		return "the release removed or deprecated the command"
	case kindDeprecatedOption:
		return "the release deprecated the option"
	case kindUnknownCommand:
		if knownCommand(p.cmd) {
			return "another release has the command"
		}
	case kindUnknownOption:
		for _, w := range p.words {
			opt, _, _ := strings.Cut(w, "=")
			if strings.HasPrefix(opt, "--") && actElsewhere(p.cmd, opt) != nil {
				return "another release has " + opt
			}
		}
	}
	return ""
}

var causeRe = regexp.MustCompile(`'[^']*'|"[^"]*"|\[[^]]*\]|[0-9]+|: .*$`)

// cause names a lint error without its particulars.
func cause(p Problem) string {
	switch p.kind {
	case kindUnknownCommand:
		return "unknown command no release has (a typo, or not kickstart)"
	case kindUnknownOption:
		return "option no release has (a typo)"
	}
	return causeRe.ReplaceAllString(p.Message, "…")
}

func slicesWithout(xs []string, suffix string) []string {
	var out []string
	for _, x := range xs {
		if !strings.HasSuffix(x, suffix) {
			out = append(out, x)
		}
	}
	return out
}
