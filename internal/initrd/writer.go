package initrd

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"math"
	"path"
	"sort"
	"strings"
)

// File is one entry to write. Directories that a Path implies are added (0755) when files does
// not list them.
type File struct {
	Path string // relative to the image root; a leading "/" or "./" is dropped
	Mode fs.FileMode
	Data []byte // a regular file's contents
	Link string // a symlink's target
	// ModTime is the mtime in seconds. Leaving it 0 (the epoch) is what makes archives
	// reproducible; Pack sets it only when asked to keep times.
	ModTime int64
	// Major and Minor are a device node's numbers.
	Major, Minor uint32
}

// mergedUsr are paths that are symlinks into /usr in EL7+ and Fedora images. The kernel's
// unpacker (clean_path in init/initramfs.c) replaces an existing entry whose type differs from
// the archive's, and Anaconda copies updates over the stage2 root the same way, so a directory
// entry at one of these paths would turn /lib into an empty directory and break the system.
var mergedUsr = map[string]string{
	"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib", "lib64": "usr/lib64",
	"var/run": "run", "var/lock": "run/lock",
}

// cleanPath normalises an archive path and refuses ones that could not be unpacked inside the
// image root.
func cleanPath(p string) (string, error) {
	q := strings.TrimLeft(p, "/")
	for strings.HasPrefix(q, "./") {
		q = strings.TrimLeft(q[2:], "/")
	}
	if strings.ContainsRune(q, 0) {
		return "", fmt.Errorf("path %q contains NUL", p)
	}
	for _, c := range strings.Split(q, "/") {
		if c == ".." {
			return "", fmt.Errorf("path %q has a .. component", p)
		}
	}
	q = path.Clean(q)
	if q == "." || q == "" {
		return "", fmt.Errorf("path %q names the root", p)
	}
	if len(q) >= maxName {
		return "", fmt.Errorf("path %q is longer than %d bytes", p, maxName-1)
	}
	return q, nil
}

// normalize checks files, adds implied directories and sorts by path, which puts every
// directory before its contents (a prefix sorts first) as the kernel needs.
func normalize(files []File) ([]File, error) {
	out := make([]File, 0, len(files))
	seen := map[string]int{}
	for _, f := range files {
		p, err := cleanPath(f.Path)
		if err != nil {
			return nil, err
		}
		if _, dup := seen[p]; dup {
			return nil, fmt.Errorf("path %q given twice", p)
		}
		if _, err := cpioMode(f.Mode); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		t := f.Mode.Type()
		switch {
		case t == fs.ModeSymlink && (f.Link == "" || len(f.Link) >= maxName):
			return nil, fmt.Errorf("%s: symlink target must be 1..%d bytes", p, maxName-1)
		case t != fs.ModeSymlink && f.Link != "":
			return nil, fmt.Errorf("%s: Link set on a %v", p, t)
		case t != 0 && len(f.Data) > 0:
			return nil, fmt.Errorf("%s: data on a %v", p, t)
		case int64(len(f.Data)) > math.MaxUint32:
			return nil, fmt.Errorf("%s: %d bytes is more than newc can record", p, len(f.Data))
		case f.ModTime < 0 || f.ModTime > math.MaxUint32:
			return nil, fmt.Errorf("%s: mtime %d does not fit newc", p, f.ModTime)
		}
		f.Path = p
		seen[p] = len(out)
		out = append(out, f)
	}
	for _, f := range out {
		for dir := path.Dir(f.Path); dir != "."; dir = path.Dir(dir) {
			if i, ok := seen[dir]; ok {
				if !out[i].Mode.IsDir() {
					return nil, fmt.Errorf("%s: parent %s is not a directory", f.Path, dir)
				}
				continue
			}
			seen[dir] = len(out)
			out = append(out, File{Path: dir, Mode: fs.ModeDir | 0o755})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// writeArchive writes a normalised file list as one newc archive: inodes numbered from 1 in
// order, owner 0:0, no device of origin, so nothing about the building host leaks in.
func writeArchive(w io.Writer, files []File) error {
	var off int64
	put := func(h *Header, m uint32, data []byte) error {
		h.Size = int64(len(data))
		n, err := writeHeader(w, h, m, off)
		off += n
		if err != nil {
			return err
		}
		k, err := w.Write(data)
		off += int64(k)
		if err != nil {
			return err
		}
		k, err = w.Write(zeros[:pad4(off)])
		off += int64(k)
		return err
	}
	for i, f := range files {
		m, err := cpioMode(f.Mode)
		if err != nil {
			return err
		}
		h := &Header{Name: f.Path, Inode: uint32(i + 1), Nlink: 1, Mtime: f.ModTime}
		data := f.Data
		switch f.Mode.Type() {
		case fs.ModeDir:
			h.Nlink = 2
		case fs.ModeSymlink:
			data = []byte(f.Link)
		case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
			h.RdevMajor, h.RdevMinor = f.Major, f.Minor
		}
		if err := put(h, m, data); err != nil {
			return fmt.Errorf("cpio %s: %w", f.Path, err)
		}
	}
	return put(&Header{Name: trailerName, Nlink: 1}, 0, nil)
}

// Write writes files as one deterministic newc archive compressed with comp: the same files
// give the same bytes.
func Write(w io.Writer, files []File, comp Compression) error {
	norm, err := normalize(files)
	if err != nil {
		return err
	}
	var raw bytes.Buffer
	if err := writeArchive(&raw, norm); err != nil {
		return err
	}
	return compress(w, comp, raw.Bytes())
}

// Build is Write into memory.
func Build(files []File, comp Compression) ([]byte, error) {
	var b bytes.Buffer
	if err := Write(&b, files, comp); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// Overlay builds a segment meant to be unpacked over an existing image: as a second initrd
// (iPXE `initrd` twice, GRUB `initrd a b`, PXELINUX `initrd=a,b`) or appended with Append. It
// refuses directory entries at paths that are /usr symlinks in merged-/usr images, because
// unpacking one replaces the symlink (see mergedUsr); write usr/lib/... instead of lib/....
func Overlay(files []File, comp Compression) ([]byte, error) {
	norm, err := normalize(files)
	if err != nil {
		return nil, err
	}
	for _, f := range norm {
		if to, ok := mergedUsr[f.Path]; ok && f.Mode.IsDir() {
			return nil, fmt.Errorf("overlay: a directory entry %s would replace the /%s -> %s symlink of merged-/usr images; use %s/... paths",
				f.Path, f.Path, to, to)
		}
	}
	return Build(norm, comp)
}

// OverlayFiles is Overlay without directory entries: each file lands only where its directory
// already exists in the image it is unpacked over, through whatever symlinks lead there (the
// kernel opens each file by its path; a file whose directory is missing is skipped). This is how
// one segment reaches /lib/dracut/hooks whether /lib is a directory, a symlink to usr/lib (EL7+)
// or /lib/dracut/hooks a symlink to /var/lib/dracut/hooks (dracut-ng): a directory entry on any
// of those paths would replace the symlink with an empty directory.
func OverlayFiles(files []File, comp Compression) ([]byte, error) {
	norm, err := normalize(files)
	if err != nil {
		return nil, err
	}
	given := map[string]bool{}
	for _, f := range files {
		if f.Mode.IsDir() {
			return nil, fmt.Errorf("overlay: %s: OverlayFiles takes no directories", f.Path)
		}
		p, _ := cleanPath(f.Path)
		given[p] = true
	}
	var out []File
	for _, f := range norm {
		if given[f.Path] {
			out = append(out, f)
		}
	}
	var raw bytes.Buffer
	if err := writeArchive(&raw, out); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if err := compress(&b, comp, raw.Bytes()); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// UpdatesImage builds an Anaconda updates.img (inst.updates=): a gzip newc archive that
// Anaconda's dracut module unpacks over the stage2 root. It runs after switch-root, so it can
// change Anaconda and stage2 files but not initramfs hooks (use Overlay for those).
func UpdatesImage(files []File) ([]byte, error) { return Overlay(files, Gzip) }

// Append writes base unchanged, zero padding, then overlay: the kernel unpacks the segments in
// order, later files replacing earlier ones. The padding aligns the overlay to 4 bytes (an
// uncompressed cpio header must be aligned) and is at least 4 bytes, because the kernel's
// lz4-legacy decoder has no end mark and stops only at a zero chunk size; zeros between
// segments are skipped by the kernel, so Append never needs to parse base.
func Append(w io.Writer, base io.Reader, overlay []byte) error {
	if len(overlay) == 0 || detect(overlay) == "" {
		return fmt.Errorf("append: overlay is not a cpio archive or a compressed one")
	}
	n, err := io.Copy(w, base)
	if err != nil {
		return fmt.Errorf("append: copying the base image: %w", err)
	}
	if _, err := w.Write(make([]byte, 4+pad4(n))); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	if _, err := w.Write(overlay); err != nil {
		return fmt.Errorf("append: %w", err)
	}
	return nil
}
