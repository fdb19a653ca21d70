package initrd

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func hookFiles() []File {
	return []File{
		{Path: "/usr/lib/dracut/hooks/initqueue/online/05-wait-route.sh", Mode: 0o755, Data: []byte("echo waiting\n")},
		{Path: "etc/cmdline.d/90-kickstand.conf", Mode: 0o644, Data: []byte("rd.net.timeout.dhcp=30\n")},
		{Path: "usr/sbin/wait", Mode: fs.ModeSymlink | 0o777, Link: "../bin/busybox"},
	}
}

func TestOverlay(t *testing.T) {
	need(t, "cpio", "gzip", "xz", "zstd")
	wantNames := "etc\netc/cmdline.d\netc/cmdline.d/90-kickstand.conf\nusr\nusr/lib\nusr/lib/dracut\nusr/lib/dracut/hooks\n" +
		"usr/lib/dracut/hooks/initqueue\nusr/lib/dracut/hooks/initqueue/online\nusr/lib/dracut/hooks/initqueue/online/05-wait-route.sh\n" +
		"usr/sbin\nusr/sbin/wait\n"
	base := run(t, makeTree(t), nil, "find . | cpio -o -H newc --quiet | gzip")
	for _, c := range []Compression{Gzip, XZ, Zstd, None} {
		t.Run(string(c), func(t *testing.T) {
			a, err := Overlay(hookFiles(), c)
			if err != nil {
				t.Fatal(err)
			}
			// Reversed input order must not matter either.
			files := hookFiles()
			files[0], files[2] = files[2], files[0]
			b, err := Overlay(files, c)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) {
				t.Fatal("two builds of the same overlay differ")
			}
			if got := string(run(t, "", a, decompressCmd[c]+" | cpio -t --quiet")); got != wantNames {
				t.Errorf("GNU cpio -t lists:\n%s\nwant:\n%s", got, wantNames)
			}
			long := string(run(t, "", a, "export TZ=UTC LC_ALL=C; "+decompressCmd[c]+" | cpio -tv --quiet --numeric-uid-gid"))
			for _, want := range []string{"-rwxr-xr-x   1 0        0              13 Jan  1  1970 usr/lib/dracut/hooks/initqueue/online/05-wait-route.sh",
				"drwxr-xr-x   2 0        0               0 Jan  1  1970 usr/lib/dracut",
				"lrwxrwxrwx   1 0        0              14 Jan  1  1970 usr/sbin/wait -> ../bin/busybox"} {
				if !strings.Contains(long, want+"\n") {
					t.Errorf("cpio -tv lacks %q:\n%s", want, long)
				}
			}
			var img bytes.Buffer
			if err := Append(&img, bytes.NewReader(base), a); err != nil {
				t.Fatal(err)
			}
			segs := checkAgainstGNU(t, img.Bytes(), []Compression{Gzip, c})
			if segs[1].Offset%4 != 0 || segs[1].Offset < int64(len(base))+4 {
				t.Errorf("overlay at offset %d after a %d-byte base", segs[1].Offset, len(base))
			}
			if !bytes.Equal(img.Bytes()[:len(base)], base) {
				t.Error("Append changed the base image")
			}
			out := extract(t, img.Bytes(), ExtractOptions{Segment: -1})
			if data, err := os.ReadFile(filepath.Join(out, "usr/lib/dracut/hooks/initqueue/online/05-wait-route.sh")); err != nil || string(data) != "echo waiting\n" {
				t.Errorf("hook after extraction: %q %v", data, err)
			}
			if data, _ := os.ReadFile(filepath.Join(out, "usr/lib/dracut/hooks/initqueue/online/11-x.sh")); string(data) != "echo hi\n" {
				t.Error("the base's files are missing after extraction of base+overlay")
			}
		})
	}
}

func TestOverlayRefuses(t *testing.T) {
	tests := []struct {
		name  string
		files []File
		want  string
	}{
		{"merged-usr-lib", []File{{Path: "lib/dracut/hooks/x.sh", Data: []byte("x")}}, "/lib -> usr/lib symlink"},
		{"merged-usr-explicit-dir", []File{{Path: "bin", Mode: fs.ModeDir | 0o755}}, "/bin -> usr/bin"},
		{"var-run", []File{{Path: "var/run/x", Data: []byte("x")}}, "/var/run -> run"},
		{"dotdot", []File{{Path: "etc/../../x"}}, ".. component"},
		{"duplicate", []File{{Path: "a"}, {Path: "./a"}}, "given twice"},
		{"parent-not-dir", []File{{Path: "a"}, {Path: "a/b"}}, "parent a is not a directory"},
		{"symlink-without-target", []File{{Path: "l", Mode: fs.ModeSymlink}}, "symlink target"},
		{"data-on-dir", []File{{Path: "d", Mode: fs.ModeDir, Data: []byte("x")}}, "data on a"},
		{"root", []File{{Path: "/"}}, "names the root"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Overlay(tc.files, Gzip); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
	if err := Append(io.Discard, strings.NewReader("base"), []byte("not an archive")); err == nil {
		t.Error("Append accepted an overlay that is no archive")
	}
}

func TestUpdatesImage(t *testing.T) {
	need(t, "cpio", "gzip")
	files := []File{
		{Path: "usr/lib/systemd/system/anaconda-pre.service.d/kickstand.conf", Mode: 0o644, Data: []byte("[Service]\nExecStartPre=/usr/libexec/kickstand-fix\n")},
		{Path: "usr/libexec/kickstand-fix", Mode: 0o755, Data: []byte("#!/bin/sh\nsed -i '/^IPADDR=$/d' /etc/sysconfig/network-scripts/ifcfg-*\n")},
	}
	a, err := UpdatesImage(files)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := UpdatesImage(files)
	if !bytes.Equal(a, b) || detect(a) != Gzip {
		t.Fatalf("updates.img not deterministic gzip (equal=%v, %s)", bytes.Equal(a, b), detect(a))
	}
	// gzip header: no name, mtime 0.
	if a[3]&0x08 != 0 || !bytes.Equal(a[4:8], []byte{0, 0, 0, 0}) {
		t.Errorf("gzip header has a name or an mtime: % x", a[:10])
	}
	// Anaconda unpacks it with cpio; do the same.
	dir := t.TempDir()
	run(t, dir, a, "gzip -dc | cpio -idmu --quiet")
	if data, err := os.ReadFile(filepath.Join(dir, "usr/libexec/kickstand-fix")); err != nil || !bytes.Equal(data, files[1].Data) {
		t.Errorf("GNU cpio extracted %q, %v", data, err)
	}
	fi, err := os.Stat(filepath.Join(dir, "usr/libexec/kickstand-fix"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("mode after GNU cpio: %v %v", fi, err)
	}
	// The CLI path: a directory.
	src := t.TempDir()
	for _, f := range files {
		os.MkdirAll(filepath.Join(src, filepath.Dir(f.Path)), 0o755)
		os.WriteFile(filepath.Join(src, f.Path), f.Data, f.Mode)
		os.Chmod(filepath.Join(src, f.Path), f.Mode)
	}
	fromDir, err := FilesFromDir(src, false)
	if err != nil {
		t.Fatal(err)
	}
	c, err := UpdatesImage(fromDir)
	if err != nil || !bytes.Equal(a, c) {
		t.Errorf("updates.img from a directory differs from the same files given directly: %v", err)
	}
}
