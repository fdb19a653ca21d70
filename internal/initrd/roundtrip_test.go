package initrd

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func pack(t *testing.T, dir string, c Compression, keepMtime bool) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Pack(&b, dir, c, keepMtime); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func extract(t *testing.T, img []byte, opts ExtractOptions) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := Extract(context.Background(), bytes.NewReader(img), dir, opts); err != nil {
		t.Fatal(err)
	}
	return dir
}

// snapshot describes a tree for comparison: type, mode, size, data hash stand-in, link.
func snapshot(t *testing.T, dir string, withMtime bool) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		desc := ModeString(fi.Mode())
		switch {
		case fi.Mode().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			desc += " " + string(data)
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode()&fs.ModeDevice != 0:
			maj, min := rdev(fi)
			desc += fmt.Sprintf(" %d,%d", maj, min)
		}
		if withMtime {
			desc += " " + fi.ModTime().UTC().Truncate(time.Second).String()
		}
		out[rel] = desc
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, a, b map[string]string) {
	t.Helper()
	for k, v := range a {
		if b[k] != v {
			if len(v) > 80 {
				v = v[:80]
			}
			w := b[k]
			if len(w) > 80 {
				w = w[:80]
			}
			t.Errorf("%s: %q vs %q", k, v, w)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			t.Errorf("%s only in the second tree", k)
		}
	}
}

// TestExtractPackRoundTrip: an archive kickstand packed is extracted and packed again to the
// same bytes, for every compression, with and without kept mtimes.
func TestExtractPackRoundTrip(t *testing.T) {
	tree := makeTree(t)
	for _, c := range []Compression{None, Gzip, XZ, Zstd} {
		for _, keep := range []bool{false, true} {
			name := string(c)
			if keep {
				name += "-keep-mtime"
			}
			t.Run(name, func(t *testing.T) {
				first := pack(t, tree, c, keep)
				if again := pack(t, tree, c, keep); !bytes.Equal(first, again) {
					t.Fatal("packing the same tree twice gave different bytes")
				}
				out := extract(t, first, ExtractOptions{Segment: -1})
				second := pack(t, out, c, keep)
				if !bytes.Equal(first, second) {
					t.Fatalf("extract -> pack changed the image: %d bytes vs %d", len(first), len(second))
				}
				sameTree(t, snapshot(t, tree, keep), snapshot(t, out, keep))
			})
		}
	}
}

// TestExtractGNUImage extracts a find|cpio|gzip image with a microcode segment, as seed 000 did
// with `gzip -dc | cpio -vid`, and compares the result with GNU cpio's own extraction.
func TestExtractGNUImage(t *testing.T) {
	need(t, "cpio", "gzip")
	tree := makeTree(t)
	early := t.TempDir()
	os.MkdirAll(filepath.Join(early, "kernel/x86/microcode"), 0o755)
	os.WriteFile(filepath.Join(early, "kernel/x86/microcode/GenuineIntel.bin"), []byte("ucode"), 0o644)
	img := append(run(t, early, nil, "find kernel | cpio -o -H newc --quiet"), run(t, tree, nil, "find . | cpio -o -H newc --quiet | gzip")...)

	ours := extract(t, img, ExtractOptions{Segment: 1})
	gnu := t.TempDir()
	run(t, gnu, img[bytes.Index(img, []byte{0x1f, 0x8b}):], "gzip -dc | cpio -id --quiet --preserve-modification-time")
	// GNU cpio leaves directories, FIFOs and devices with the current time, so mtimes are
	// compared by the round-trip test instead.
	sameTree(t, snapshot(t, gnu, false), snapshot(t, ours, false))
	if _, err := os.Stat(filepath.Join(ours, "kernel")); err == nil {
		t.Error("segment 1 extraction wrote the microcode segment's files")
	}
	all := extract(t, img, ExtractOptions{Segment: -1})
	if b, err := os.ReadFile(filepath.Join(all, "kernel/x86/microcode/GenuineIntel.bin")); err != nil || string(b) != "ucode" {
		t.Errorf("all-segment extraction: microcode %q, %v", b, err)
	}
}

// rawArchive writes headers as given, bypassing the checks Write makes, to build hostile input.
func rawArchive(t *testing.T, entries ...Header) []byte {
	t.Helper()
	var b bytes.Buffer
	var off int64
	for _, h := range append(entries, Header{Name: trailerName}) {
		m := uint32(0)
		if h.Name != trailerName {
			var err error
			if m, err = cpioMode(h.Mode); err != nil {
				t.Fatal(err)
			}
		}
		data := []byte(strings.Repeat("x", int(h.Size)))
		if h.Link != "" {
			data = []byte(h.Link)
		}
		h.Size = int64(len(data))
		n, _ := writeHeader(&b, &h, m, off)
		off += n
		b.Write(data)
		off += int64(len(data))
		b.Write(zeros[:pad4(off)])
		off += pad4(off)
	}
	return b.Bytes()
}

func TestExtractRefusesEscapes(t *testing.T) {
	file := func(name string) Header { return Header{Name: name, Mode: 0o644, Size: 3} }
	link := func(name, to string) Header { return Header{Name: name, Mode: fs.ModeSymlink | 0o777, Link: to} }
	tests := []struct {
		name    string
		entries []Header
		want    string
	}{
		{"dotdot", []Header{file("../evil")}, "with a .. component refused"},
		{"inner-dotdot", []Header{file("a/../../evil")}, ".. component refused"},
		{"absolute", []Header{file("/etc/evil")}, "absolute name"},
		{"symlink-climbs-out", []Header{link("etc/l", "../../outside")}, "points outside"},
		{"write-through-absolute-symlink", []Header{link("x", "/tmp"), file("x/evil")}, "parent x is a symlink"},
		{"write-through-relative-symlink", []Header{{Name: "d", Mode: fs.ModeDir | 0o755}, link("x", "d"), file("x/evil")}, "parent x is a symlink"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "root")
			_, err := Extract(context.Background(), bytes.NewReader(rawArchive(t, tc.entries...)), dir, ExtractOptions{Segment: -1})
			if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), `"`, "'"), strings.ReplaceAll(tc.want, `"`, "'")) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(parent, "evil")); err == nil {
				t.Error("a file was written outside the extraction directory")
			}
			if _, err := os.Stat("/tmp/evil"); err == nil {
				t.Error("/tmp/evil was written")
			}
		})
	}
	// Inside links are fine, absolute ones count from the root and are kept verbatim.
	dir := t.TempDir()
	img := rawArchive(t, link("etc/mtab", "/proc/self/mounts"), link("usr/lib/x", "../../etc/mtab"), file("./a/b"))
	if _, err := Extract(context.Background(), bytes.NewReader(img), dir, ExtractOptions{Segment: -1}); err != nil {
		t.Fatal(err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "etc/mtab")); l != "/proc/self/mounts" {
		t.Errorf("etc/mtab -> %q", l)
	}
}

func TestExtractHardLinks(t *testing.T) {
	need(t, "cpio")
	tree := t.TempDir()
	os.WriteFile(filepath.Join(tree, "a"), []byte("shared"), 0o644)
	os.Link(filepath.Join(tree, "a"), filepath.Join(tree, "b"))
	img := run(t, tree, nil, "printf 'a\\nb\\n' | cpio -o -H newc --quiet")
	dir := extract(t, img, ExtractOptions{Segment: -1})
	a, _ := os.Stat(filepath.Join(dir, "a"))
	b, _ := os.Stat(filepath.Join(dir, "b"))
	data, _ := os.ReadFile(filepath.Join(dir, "a"))
	if a == nil || b == nil || !os.SameFile(a, b) || string(data) != "shared" {
		t.Errorf("hard link not restored: %v %v %q", a, b, data)
	}
}

func TestExtractProgressAndCancel(t *testing.T) {
	img := pack(t, makeTree(t), Gzip, false)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Extract(ctx, bytes.NewReader(img), t.TempDir(), ExtractOptions{Segment: -1}); err != context.Canceled {
		t.Errorf("cancelled extract: %v", err)
	}
	var calls, entries int
	st, err := Extract(context.Background(), bytes.NewReader(img), t.TempDir(), ExtractOptions{Segment: -1,
		Progress: func(n int, _ int64) { calls++; entries = n }})
	if err != nil || calls == 0 || entries != st.Entries || st.Entries < 10 {
		t.Errorf("progress calls %d last %d, stats %+v, %v", calls, entries, st, err)
	}
	_ = time.Second
}
