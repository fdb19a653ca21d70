package kickstart

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestShlex(t *testing.T) {
	// expectations are Python's shlex.split(line, comments=True)
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"a b  c\n", []string{"a", "b", "c"}, false},
		{`user --gecos="A \"B\" C" --name='x y'`, []string{"user", `--gecos=A "B" C`, "--name=x y"}, false},
		{"rootpw abc#def ghi", []string{"rootpw", "abc"}, false},
		{"a '#not' \"#not\" # yes", []string{"a", "#not", "#not"}, false},
		{`a "b\c" 'd\e' f\g`, []string{"a", `b\c`, `d\e`, "fg"}, false},
		{"a ''", []string{"a", ""}, false},
		{"net \\\n", []string{"net", "\n"}, false},
		{`bootloader --append="x`, nil, true},
		{`a \`, nil, true},
	} {
		toks, _, err := shlexSplit(tc.in, true)
		if (err != nil) != tc.err {
			t.Errorf("%q: err %v", tc.in, err)
			continue
		}
		if !tc.err && !reflect.DeepEqual(tokenValues(toks), tc.want) {
			t.Errorf("%q: got %q want %q", tc.in, tokenValues(toks), tc.want)
		}
	}
}

func TestSplitLines(t *testing.T) {
	got := splitLines("a\r\nb\rc\x0cd\ne")
	want := []string{"a\r\n", "b\r", "c\x0c", "d\n", "e"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q", got)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{
		"RHEL9": RHEL9, "rhel9": RHEL9, "rhel7.2": RHEL7, "centos7": RHEL7, "CentOS-7.9.2009": RHEL7,
		"rocky8.10": RHEL8, "almalinux9": RHEL9, "el10": RHEL10, "rhel6": RHEL6, "centos-stream9": RHEL9,
		"F40": F40, "fedora40": F40, "fedora-40": F40,
	} {
		got, err := ParseVersion(in)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "rhel5", "fedora38", "ubuntu22", "windows"} {
		if _, err := ParseVersion(in); err == nil {
			t.Errorf("ParseVersion(%q) should fail", in)
		}
	}
}

func TestParseStructure(t *testing.T) {
	src := "# c\n\nlang en_US\n%pre --interpreter=/bin/bash\necho %end-not\n  %end\n%post\n%packages\n"
	f := ParseString(src, "s.ks")
	kinds := []NodeKind{}
	for _, n := range f.Nodes {
		kinds = append(kinds, n.Kind)
	}
	want := []NodeKind{NodeComment, NodeBlank, NodeCommand, NodeSection, NodeSection, NodeSection}
	if !reflect.DeepEqual(kinds, want) {
		t.Fatalf("kinds %v want %v", kinds, want)
	}
	pre := f.Nodes[3]
	if pre.Pos.Line != 4 || pre.End == nil || pre.End.Pos.Line != 6 || len(pre.Body) != 1 {
		t.Fatalf("pre: %+v", pre)
	}
	// %post is cut by %packages (line 8): fatal there, as pykickstart
	post := f.Nodes[4]
	if post.Fatal == nil || post.Fatal.Line != 8 || post.Fatal.Message != "Section %post does not end with %end." {
		t.Fatalf("post fatal: %+v", post.Fatal)
	}
	probs := Lint([]byte(src), "s.ks", RHEL9, LintOptions{})
	var got []string
	for _, p := range probs {
		got = append(got, p.String())
	}
	wantProbs := []string{
		"s.ks:6: warning: indented %end closes %pre here; a heredoc body cannot contain %end",
		"s.ks:8: error: Section %post does not end with %end.",
	}
	if !reflect.DeepEqual(got, wantProbs) {
		t.Fatalf("problems: %q", got)
	}
}

func TestFormatRoundTrip(t *testing.T) {
	src := "  lang   en_US.UTF-8   # hi  \n\n   # comment   \nuser  --name='a b'   --gecos=\"x  y\"\n%post   --nochroot\n  keep   spacing  \n   %end  \n%packages  --ignoremissing\n   @core  \n%end\n"
	want := "lang en_US.UTF-8 # hi\n\n# comment\nuser --name='a b' --gecos=\"x  y\"\n%post --nochroot\n  keep   spacing  \n%end\n%packages --ignoremissing\n@core\n%end\n"
	got := Format(ParseString(src, "f.ks"))
	if string(got) != want {
		t.Fatalf("format:\n%s", UnifiedDiff("want", "got", []byte(want), got))
	}
	if again := Format(ParseString(string(got), "f.ks")); !bytes.Equal(again, got) {
		t.Fatalf("format is not idempotent:\n%s", UnifiedDiff("once", "twice", got, again))
	}
}

// TestFormatCorpus formats every kickstart we have and checks that the
// result parses to the same words and lints the same.
func TestFormatCorpus(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "ks", "*.ks"))
	shared := os.Getenv("KICKSTAND_SHARED")
	if shared == "" {
		shared = filepath.Join("..", "..", "..", "shared")
	}
	more, _ := filepath.Glob(filepath.Join(shared, "kickstart-corpus", "real", "*.ks"))
	files = append(files, more...)
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		a := ParseString(string(src), "x")
		b := ParseString(string(Format(a)), "x")
		if !sameWords(a, b) {
			t.Errorf("%s: formatting changed the parse", name)
		}
		for _, v := range Versions() {
			pa := Lint(src, "x", v, LintOptions{})
			pb := Lint(Format(a), "x", v, LintOptions{})
			if HasErrors(pa, false) != HasErrors(pb, false) {
				t.Errorf("%s %v: verdict changed by fmt: %v vs %v", name, v, pa, pb)
			}
		}
	}
}

func sameWords(a, b *File) bool {
	var wa, wb []string
	collect := func(f *File, out *[]string) {
		for _, n := range f.Nodes {
			if n.Kind == NodeBlank || n.Kind == NodeComment {
				continue
			}
			*out = append(*out, fmt.Sprint(n.Kind, n.Args, n.End != nil, n.Fatal != nil))
			for _, l := range n.Body {
				if n.Args[0] == "%packages" {
					*out = append(*out, strings.TrimFunc(l.Raw, pySpace))
				} else {
					*out = append(*out, l.Raw)
				}
			}
		}
	}
	collect(a, &wa)
	collect(b, &wb)
	return reflect.DeepEqual(wa, wb)
}

func TestIncludes(t *testing.T) {
	files := map[string]string{
		"/ks/main.ks":               "lang en_US\n%include parts.ks\n%ksappend http://192.0.2.1/extra.ks\n%post\n%include /ks/body.sh\n%end\n",
		"/ks/parts.ks":              "part / --size=big\n",
		"http://192.0.2.1/extra.ks": "frobnicate\n",
		"/ks/body.sh":               "echo hi\n",
		"/ks/loop.ks":               "%include /ks/loop2.ks\n",
		"/ks/loop2.ks":              "%include loop.ks\n",
	}
	var fetched []string
	fetch := func(_ context.Context, ref string) ([]byte, error) {
		fetched = append(fetched, ref)
		s, ok := files[ref]
		if !ok {
			return nil, fmt.Errorf("open %s: %w", ref, fs.ErrNotExist)
		}
		return []byte(s), nil
	}
	lint := func(name string, popts ParseOptions) []string {
		t.Helper()
		popts.Fetch = fetch
		var got []string
		for _, p := range Lint([]byte(files[name]), name, RHEL9, LintOptions{Parse: popts}) {
			got = append(got, p.String())
		}
		return got
	}
	follow := ParseOptions{FollowIncludes: true}
	got := lint("/ks/main.ks", follow)
	want := []string{
		"/ks/parts.ks:1: error: argument --size: invalid int value: 'big'",
		"http://192.0.2.1/extra.ks:1: error: Unknown command: frobnicate",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("problems %q\nwant %q", got, want)
	}
	f := Parse(context.Background(), []byte(files["/ks/main.ks"]), "/ks/main.ks", ParseOptions{FollowIncludes: true, Fetch: fetch})
	post := f.Nodes[4]
	if n := f.Nodes[2]; n.Kind != NodeKsappend || !f.Nodes[3].spliced {
		t.Fatalf("%%ksappend line kept, fragment spliced after it: %+v", f.Nodes)
	}
	if len(post.Body) != 2 || !post.Body[0].Directive || post.Body[1].Raw != "echo hi" || !post.Body[1].Included || post.Body[1].Pos.File != "/ks/body.sh" {
		t.Fatalf("include in %%post: %+v", post.Body)
	}
	if out := string(Format(f)); strings.Contains(out, "echo hi") || strings.Contains(out, "frobnicate") {
		t.Fatalf("Format must print the file as written, not its includes:\n%s", out)
	}
	// without FollowIncludes nothing is fetched, like ksvalidator without -i
	fetched = nil
	if p := lint("/ks/main.ks", ParseOptions{}); len(p) != 0 || len(fetched) != 0 {
		t.Fatalf("not following: %v, fetched %v", p, fetched)
	}
	if got := lint("/ks/loop.ks", follow); len(got) != 1 || !strings.Contains(got[0], "/ks/loop2.ks:1: error: %include loop.ks: include cycle") {
		t.Fatalf("cycle: %q", got)
	}
	files["/a"] = "%include /a1\n"
	deep := ParseOptions{FollowIncludes: true, MaxDepth: 4}
	for i := 1; i < 8; i++ {
		files[fmt.Sprintf("/a%s", strings.Repeat("1", i))] = fmt.Sprintf("%%include /a%s\n", strings.Repeat("1", i+1))
	}
	if got := lint("/a", deep); len(got) != 1 || !strings.Contains(got[0], "depth limit (4)") {
		t.Fatalf("depth: %q", got)
	}
	files["/m.ks"] = "%include /tmp/part-include\nbogus\n"
	got = lint("/m.ks", follow)
	want = []string{
		"/m.ks:1: error: %include /tmp/part-include: file not found (looked for /tmp/part-include) (hint: if %pre writes it at install time, lint with --allow-missing '/tmp/*')",
		"/m.ks:2: error: Unknown command: bogus",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("missing: %q\nwant %q", got, want)
	}
	got = lint("/m.ks", ParseOptions{FollowIncludes: true, AllowMissing: []string{"/tmp/*"}})
	if len(got) != 2 || !strings.HasPrefix(got[0], "/m.ks:1: warning: %include /tmp/part-include: not found, not checked (allowed by --allow-missing /tmp/*") {
		t.Fatalf("allowed missing: %q", got)
	}
	// a relative target is looked for next to the file, then in IncludeDirs
	files["/srv/frags/disk.ks"] = "zerombr\n"
	files["/srv/ks/r.ks"] = "%include disk.ks\n"
	fetched = nil
	if got := lint("/srv/ks/r.ks", ParseOptions{FollowIncludes: true, IncludeDirs: []string{"/srv/frags"}}); len(got) != 0 {
		t.Fatalf("include dir: %q", got)
	}
	if want := []string{"/srv/ks/disk.ks", "/srv/frags/disk.ks"}; !reflect.DeepEqual(fetched, want) {
		t.Fatalf("looked for %q, want %q", fetched, want)
	}
}

func TestDiffAgainstGNUDiff(t *testing.T) {
	a := []byte("1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n")
	b := []byte("0\n1\n2\nthree\n4\n5\n6\n7\n8\n9\n11\n12\n13\n")
	d := UnifiedDiff("a", "b", a, b)
	checkPatch(t, a, b, d)
	if UnifiedDiff("a", "b", a, a) != "" {
		t.Fatal("equal inputs must give an empty diff")
	}
	checkPatch(t, nil, b, UnifiedDiff("a", "b", nil, b))
	checkPatch(t, a, nil, UnifiedDiff("a", "b", a, nil))
}
