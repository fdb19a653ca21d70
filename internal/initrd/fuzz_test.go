package initrd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// fuzzLimits keep each input cheap: the defaults allow a 256 MiB decoder window and 64 GiB of
// output, which is right for real images and too slow for millions of inputs.
var fuzzLimits = Limits{MaxSegments: 16, MaxEntries: 2000, MaxBytes: 8 << 20, MaxWindow: 1 << 20}

// FuzzReadInitrd feeds arbitrary bytes to the reader. It must not panic, must stay within its
// limits, and what it accepts must be consistent: segments in order inside the input, and
// nothing but zero padding after the last one. The seed corpus in testdata/fuzz/FuzzReadInitrd
// holds small real images (GNU cpio piped into gzip, xz, zstd, lz4; a microcode segment; an
// overlay appended by kickstand); regenerate it with KICKSTAND_FUZZ_SEEDS=1 go test -run TestFuzzSeeds.
func FuzzReadInitrd(f *testing.F) {
	f.Add([]byte("070701"))
	f.Add(append([]byte{0x1f, 0x8b, 8, 0}, make([]byte, 20)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		segs, err := List(bytes.NewReader(data), fuzzLimits)
		if len(segs) > fuzzLimits.MaxSegments {
			t.Fatalf("%d segments", len(segs))
		}
		entries := 0
		for _, s := range segs {
			entries += len(s.Entries)
		}
		if entries > fuzzLimits.MaxEntries {
			t.Fatalf("%d entries", entries)
		}
		if err != nil {
			return
		}
		var end int64
		for _, s := range segs {
			if s.Offset < end || s.Length <= 0 || s.Offset+s.Length > int64(len(data)) {
				t.Fatalf("segment %+v after offset %d in %d bytes", s.SegmentInfo, end, len(data))
			}
			end = s.Offset + s.Length
		}
		if len(bytes.Trim(data[end:], "\x00")) != 0 {
			t.Fatalf("accepted non-zero bytes after the last segment (end %d of %d)", end, len(data))
		}
	})
}

// TestFuzzSeeds checks that every committed seed is a valid image (so the corpus keeps
// exercising the decoders rather than the error paths) and, with KICKSTAND_FUZZ_SEEDS=1,
// rewrites the corpus from real tools.
func TestFuzzSeeds(t *testing.T) {
	dir := filepath.Join("testdata", "fuzz", "FuzzReadInitrd")
	if os.Getenv("KICKSTAND_FUZZ_SEEDS") == "1" {
		need(t, "cpio", "gzip", "xz", "zstd", "lz4")
		tree := t.TempDir()
		os.MkdirAll(filepath.Join(tree, "etc"), 0o755)
		os.WriteFile(filepath.Join(tree, "init"), []byte("#!/bin/sh\necho hi\n"), 0o755)
		os.WriteFile(filepath.Join(tree, "etc/x.conf"), []byte("a=1\n"), 0o644)
		os.Symlink("/init", filepath.Join(tree, "linuxrc"))
		newc := run(t, tree, nil, "find . | sort | cpio -o -H newc --quiet --reproducible")
		ucode := run(t, tree, nil, "echo etc/x.conf | cpio -o -H newc --quiet --reproducible")
		gz := run(t, "", newc, "gzip -9n")
		overlay, err := Overlay(hookFiles()[:1], Gzip)
		if err != nil {
			t.Fatal(err)
		}
		seeds := map[string][]byte{
			"newc":           newc,
			"crc":            run(t, tree, nil, "find . | sort | cpio -o -H crc --quiet --reproducible"),
			"gzip":           gz,
			"xz":             run(t, "", newc, "xz --check=crc32 --lzma2=dict=64KiB"),
			"zstd":           run(t, "", newc, "zstd -q --zstd=wlog=16"),
			"lz4-legacy":     run(t, "", newc, "lz4 -lq"),
			"lz4-frame":      run(t, "", newc, "lz4 -q -BD --content-size"),
			"microcode-gzip": append(append([]byte{}, ucode...), gz...),
			"overlay":        append(append(append([]byte{}, gz...), 0, 0, 0, 0), overlay...),
		}
		os.MkdirAll(dir, 0o755)
		for name, data := range seeds {
			body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
			if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The other files in the corpus are regression inputs the fuzzer found; they need not parse.
	for _, name := range []string{"newc", "crc", "gzip", "xz", "zstd", "lz4-legacy", "lz4-frame", "microcode-gzip", "overlay"} {
		file := filepath.Join(dir, name)
		data := readSeed(t, file)
		if _, err := List(bytes.NewReader(data), fuzzLimits); err != nil {
			t.Errorf("seed %s: %v", filepath.Base(file), err)
		}
	}
}

// readSeed decodes a "go test fuzz v1" file holding one []byte.
func readSeed(t *testing.T, file string) []byte {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var q string
	if _, err := fmt.Sscanf(string(bytes.TrimPrefix(raw, []byte("go test fuzz v1\n[]byte("))), "%q", &q); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return []byte(q)
}
