package distro

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestISOReader checks the ISO source against xorriso's Rock Ridge output:
// exact names (dot files included), sizes and contents, and that every file
// took the direct path to its data rather than go-diskfs's per-file
// directory re-parse.
func TestISOReader(t *testing.T) {
	if _, err := exec.LookPath("xorriso"); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatal("xorriso is required (scripts/deps.sh installs it)")
		}
		t.Skip("xorriso not installed")
	}
	dir := t.TempDir()
	want := map[string][]byte{
		".treeinfo":              []byte("[general]\nfamily = CentOS\n"),
		".discinfo":              []byte("1449700451.46\n"),
		"images/pxeboot/vmlinuz": bytes.Repeat([]byte{1, 2, 3}, 5000),
		"Packages/.hidden":       []byte("h"),
		"Packages/a-very-long-package-name-that-is-not-8.3-1.0-1.el7.x86_64.rpm": []byte("rpm"),
		"trailing.":          []byte("t"),
		"MixedCase/File.TXT": []byte("m"),
		"empty":              nil,
	}
	for p, b := range want {
		os.MkdirAll(filepath.Join(dir, "tree", filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, "tree", p), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	iso := filepath.Join(dir, "t.iso")
	if out, err := exec.Command("xorriso", "-as", "mkisofs", "-R", "-J", "-V", "T", "-o", iso, filepath.Join(dir, "tree")).CombinedOutput(); err != nil {
		t.Fatalf("xorriso: %v\n%s", err, out)
	}
	src, err := openSource(context.Background(), iso)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	s := src.(*isoSource)
	var got []string
	for _, f := range s.Files() {
		got = append(got, f.Path)
		if _, ok := s.extents[f.Path]; !ok && f.Size > 0 {
			t.Errorf("%s: no direct extent", f.Path)
		}
		r, err := s.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(b, want[f.Path]) {
			t.Errorf("%s: %d bytes, %v; want %d", f.Path, len(b), err, len(want[f.Path]))
		}
	}
	var names []string
	for p := range want {
		names = append(names, p)
	}
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("files %q\nwant  %q", got, names)
	}
}
