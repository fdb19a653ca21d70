package initrd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// decompressCmd is the real tool that turns one segment back into a bare cpio archive.
var decompressCmd = map[Compression]string{
	None: "cat", Gzip: "gzip -dc", XZ: "xz -dc", Zstd: "zstd -qdc", LZ4: "lz4 -qdc", LZ4Legacy: "lz4 -qdc",
}

var (
	gnuLong = regexp.MustCompile(`^(\S+ +\d+ \d+ +\d+ +(?:\d+|\d+, +\d+)) (\w{3} [ \d]\d (?:\d\d:\d\d| \d{4})) (.*)$`)
	ourLong = regexp.MustCompile(`^(\S+ +\d+ \d+ +\d+ +(?:\d+|\d+, +\d+)) (\d{4}-\d\d-\d\d \d\d:\d\d) (.*)$`)
)

// gnuDate formats t as GNU cpio -tv does in the C locale with TZ=UTC: the time for the last six
// months, the year otherwise.
func gnuDate(t time.Time) string {
	t = t.UTC()
	if d := time.Since(t); d < 0 || d > 182*24*time.Hour {
		return t.Format("Jan _2  2006")
	}
	return t.Format("Jan _2 15:04")
}

// checkAgainstGNU cuts every segment out of img at the offsets List reported, has the real
// decompressor and GNU cpio list it, and compares that with List's entries: names in order for
// `cpio -t`, and mode, links, owner, size or device numbers, mtime and link target for -tv.
func checkAgainstGNU(t *testing.T, img []byte, want []Compression) []Segment {
	t.Helper()
	segs, err := List(bytes.NewReader(img), Limits{})
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(segs) != len(want) {
		t.Fatalf("%d segments, want %d: %+v", len(segs), len(want), segs)
	}
	for i, s := range segs {
		if s.Compression != want[i] {
			t.Errorf("segment %d is %s, want %s", i, s.Compression, want[i])
		}
		part := img[s.Offset : s.Offset+s.Length]
		gnuNames := run(t, "", part, decompressCmd[s.Compression]+" | cpio -t --quiet")
		var ours bytes.Buffer
		WriteListing(&ours, []Segment{s}, false)
		if got := strings.SplitN(ours.String(), "\n", 2)[1]; got != string(gnuNames) {
			t.Errorf("segment %d names differ from GNU cpio -t:\nours:\n%s\ngnu:\n%s", i, got, gnuNames)
		}
		gnuLines := strings.Split(strings.TrimSuffix(string(run(t, "", part,
			"export TZ=UTC LC_ALL=C; "+decompressCmd[s.Compression]+" | cpio -tv --quiet --numeric-uid-gid")), "\n"), "\n")
		ours.Reset()
		WriteListing(&ours, []Segment{s}, true)
		ourLines := strings.Split(strings.TrimSuffix(ours.String(), "\n"), "\n")[1:]
		if len(ourLines) != len(gnuLines) {
			t.Fatalf("segment %d: %d long lines, GNU cpio printed %d", i, len(ourLines), len(gnuLines))
		}
		for j, line := range ourLines {
			g, o := gnuLong.FindStringSubmatch(gnuLines[j]), ourLong.FindStringSubmatch(line)
			if g == nil || o == nil {
				t.Errorf("unparsable lines:\nours %q\ngnu  %q", line, gnuLines[j])
				continue
			}
			if o[1] != g[1] || o[3] != g[3] || gnuDate(time.Unix(s.Entries[j].Mtime, 0)) != g[2] {
				t.Errorf("segment %d entry %d:\nours %q\ngnu  %q", i, j, line, gnuLines[j])
			}
		}
	}
	return segs
}

func TestListMatchesGNUCpio(t *testing.T) {
	need(t, "cpio", "gzip", "xz", "zstd", "lz4")
	tree := makeTree(t)
	// find | cpio as seed 000's addendum does it.
	newc := run(t, tree, nil, "find . | cpio -o -H newc --quiet")
	early := t.TempDir()
	ucode := filepath.Join(early, "kernel/x86/microcode")
	if err := os.MkdirAll(ucode, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ucode, "GenuineIntel.bin"), bytes.Repeat([]byte{0x01, 0x00, 0x00, 0x00, 0xa5}, 999), 0o644); err != nil {
		t.Fatal(err)
	}
	// dracut's early cpio: names without "./", no "." entry.
	microcode := run(t, early, nil, "find kernel | sort | cpio -o -H newc --quiet")
	comp := func(cmd string) []byte { return run(t, "", newc, cmd) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

	gz := comp("gzip -9")
	tests := []struct {
		name string
		img  []byte
		want []Compression
	}{
		{"newc", newc, []Compression{None}},
		{"gzip", gz, []Compression{Gzip}},
		{"microcode+gzip", cat(microcode, gz), []Compression{None, Gzip}},
		{"xz-crc32", comp("xz --check=crc32"), []Compression{XZ}},
		{"microcode+xz-lzma2-dict", cat(microcode, comp("xz --check=crc32 --lzma2=dict=1MiB")), []Compression{None, XZ}},
		{"xz-crc64-multithreaded", comp("xz -T2 --block-size=20000"), []Compression{XZ}},
		{"zstd", comp("zstd -q -19"), []Compression{Zstd}},
		{"lz4-legacy", comp("lz4 -l -q"), []Compression{LZ4Legacy}},
		{"lz4-frame", comp("lz4 -q --content-size -BD"), []Compression{LZ4}},
		// Segments back to back, with and without zero padding between them.
		{"microcode+gzip+xz+zstd+gzip", cat(microcode, gz, comp("xz --check=crc32"), make([]byte, 3), comp("zstd -q"), make([]byte, 512), gz),
			[]Compression{None, Gzip, XZ, Zstd, Gzip}},
		{"lz4-legacy+zero+gzip", cat(comp("lz4 -l -q"), make([]byte, 4), gz), []Compression{LZ4Legacy, Gzip}},
		{"two-bare-archives", cat(microcode, newc), []Compression{None, None}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			segs := checkAgainstGNU(t, tc.img, tc.want)
			last := segs[len(segs)-1]
			if tail := tc.img[last.Offset+last.Length:]; len(bytes.Trim(tail, "\x00")) != 0 {
				t.Errorf("%d non-zero bytes after the last segment's end", len(tail))
			}
		})
	}
}

// TestListDetails checks fields GNU cpio's listing does not show.
func TestListDetails(t *testing.T) {
	need(t, "cpio", "gzip")
	tree := makeTree(t)
	img := run(t, tree, nil, "find . | cpio -o -H crc --quiet | gzip")
	segs, err := List(bytes.NewReader(img), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Header{}
	for _, h := range segs[0].Entries {
		byName[h.Name] = h
		if !h.CRC {
			t.Errorf("%s: CRC not set for a 070702 archive", h.Name)
		}
	}
	tool := byName["usr/bin/tool"]
	if tool.Mode != 0o755|os.ModeSetuid || tool.Size != int64(5000*len("binary\x00data")) {
		t.Errorf("usr/bin/tool: mode %v size %d", tool.Mode, tool.Size)
	}
	if tmp := byName["tmp"]; tmp.Mode != os.ModeDir|os.ModeSticky|0o777 {
		t.Errorf("tmp: mode %v", tmp.Mode)
	}
	if l := byName["etc/mtab"]; l.Link != "/proc/self/mounts" || l.Mode.Type() != os.ModeSymlink {
		t.Errorf("etc/mtab: %+v", l)
	}
	if os.Geteuid() == 0 {
		if c := byName["dev/console"]; c.RdevMajor != 5 || c.RdevMinor != 1 || c.Mode != os.ModeDevice|os.ModeCharDevice|0o600 {
			t.Errorf("dev/console: %+v", c)
		}
		if c := byName["dev/loop300"]; c.RdevMajor != 7 || c.RdevMinor != 300 {
			t.Errorf("dev/loop300: %+v", c)
		}
	}
	// A corrupted checksum is caught when the data is read.
	raw := run(t, tree, nil, "find . | sort | cpio -o -H crc --quiet")
	i := bytes.Index(raw, []byte("usr/share/odd3\x00"))
	j := bytes.Index(raw[i:], []byte("abc")) + i
	raw[j] = 'x'
	if _, err := List(bytes.NewReader(raw), Limits{}); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Errorf("corrupted 070702 data: %v, want a checksum error", err)
	}
}

// unalignedPad is a count of zero bytes that leaves n+pad off a 4-byte boundary.
func unalignedPad(n int) int {
	if (n+1)%4 == 0 {
		return 2
	}
	return 1
}

func TestReaderErrors(t *testing.T) {
	need(t, "cpio", "gzip", "bzip2")
	tree := makeTree(t)
	newc := run(t, tree, nil, "find . | cpio -o -H newc --quiet")
	gz := run(t, "", newc, "gzip")
	tests := []struct {
		name, want string
		img        []byte
	}{
		{"truncated-gzip", "segment 0 (gzip at offset 0): truncated", gz[:len(gz)/2]},
		{"truncated-gzip-trailer", "segment 0 (gzip at offset 0): truncated", gz[:len(gz)-3]},
		{"truncated-newc", "segment 0 (none at offset 0): truncated", newc[:300]},
		{"no-trailer", "no cpio trailer", run(t, "", newc[:bytes.Index(newc, []byte("TRAILER!!!"))-110], "gzip")},
		{"garbage-after", "offset " + fmt.Sprint(len(gz)) + ": unknown data", append(append([]byte{}, gz...), "hello world"...)},
		{"bzip2", "bzip2 segments are not supported", run(t, "", newc, "bzip2")},
		{"unaligned-newc", "unaligned offset", append(append(append([]byte{}, gz...), make([]byte, unalignedPad(len(gz)))...), newc...)},
		{"odc", "odc", run(t, tree, nil, "find . | cpio -o -H odc --quiet")},
		{"bad-hex", "bad cpio header field", append([]byte("070701ZZZZZZZZ"), newc[14:]...)},
		{"empty-gzip", "no cpio trailer", run(t, "", nil, "gzip")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := List(bytes.NewReader(tc.img), Limits{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	t.Run("limits", func(t *testing.T) {
		img := bytes.Repeat(newc, 5)
		if _, err := List(bytes.NewReader(img), Limits{MaxSegments: 4}); err == nil || !strings.Contains(err.Error(), "more than 4 segments") {
			t.Errorf("MaxSegments: %v", err)
		}
		if _, err := List(bytes.NewReader(gz), Limits{MaxEntries: 3}); err == nil || !strings.Contains(err.Error(), "more than 3 entries") {
			t.Errorf("MaxEntries: %v", err)
		}
		if _, err := List(bytes.NewReader(gz), Limits{MaxBytes: 1000}); err == nil || !strings.Contains(err.Error(), "more than 1000 decompressed bytes") {
			t.Errorf("MaxBytes: %v", err)
		}
		big := run(t, "", newc, "xz --check=crc32 --lzma2=dict=64MiB")
		if _, err := List(bytes.NewReader(big), Limits{MaxWindow: 8 << 20}); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
			t.Errorf("MaxWindow: %v", err)
		}
	})
}
