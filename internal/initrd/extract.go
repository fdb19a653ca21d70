package initrd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ExtractOptions control Extract.
type ExtractOptions struct {
	// Segment extracts only that segment; -1 extracts all of them in order, later files
	// replacing earlier ones as the kernel does.
	Segment int
	// Owner applies the archive's uid/gid (needs root).
	Owner  bool
	Limits Limits
	// Progress, if set, is called now and then with the entries and data bytes written so far.
	Progress func(entries int, bytes int64)
}

// ExtractStats reports what Extract did.
type ExtractStats struct {
	Entries int
	Bytes   int64
	// Skipped lists entries that could not be created here: device nodes when not root, and
	// sockets.
	Skipped []string
}

// Extract unpacks an initrd into dir, which is created if needed. It never writes outside dir:
// absolute names and names with a .. component are refused, a symlink whose relative target
// climbs out of dir is refused (an absolute target counts from dir, the image's root, and is kept
// as it is so that the image can be packed again), and no path is written through a symlink, so
// an archive cannot plant "x -> /etc" and then write "x/passwd".
func Extract(ctx context.Context, r io.Reader, dir string, opts ExtractOptions) (ExtractStats, error) {
	var st ExtractStats
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return st, fmt.Errorf("extract: %w", err)
	}
	rd := NewReaderLimits(r, opts.Limits)
	defer rd.Close()
	type dirMeta struct {
		path  string
		mode  fs.FileMode
		mtime int64
	}
	var dirs []dirMeta
	links := map[[3]uint32]string{} // hard links: (dev major, dev minor, inode) -> first path
	buf := make([]byte, 256<<10)
	last := time.Now()
	for {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return st, fmt.Errorf("extract: %w", err)
		}
		if opts.Segment >= 0 && rd.Segment() != opts.Segment {
			continue
		}
		name, err := extractName(h.Name)
		if err != nil {
			return st, fmt.Errorf("extract: %w", err)
		}
		if name == "" {
			continue // the archive's "." entry: dir itself
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := safeParents(dir, name); err != nil {
			return st, fmt.Errorf("extract %s: %w", name, err)
		}
		if err := clearTarget(target, h.Mode.IsDir()); err != nil {
			return st, fmt.Errorf("extract %s: %w", name, err)
		}
		switch t := h.Mode.Type(); t {
		case fs.ModeDir:
			if err := os.Mkdir(target, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return st, fmt.Errorf("extract %s: %w", name, err)
			}
			dirs = append(dirs, dirMeta{target, h.Mode, h.Mtime})
		case 0:
			n, err := writeFile(rd, h, target, links, buf)
			st.Bytes += n
			if err != nil {
				return st, fmt.Errorf("extract %s: %w", name, err)
			}
		case fs.ModeSymlink:
			if linkEscapes(name, h.Link) {
				return st, fmt.Errorf("extract %s: symlink target %q points outside %s", name, h.Link, dir)
			}
			if err := os.Symlink(h.Link, target); err != nil {
				return st, fmt.Errorf("extract %s: %w", name, err)
			}
		case fs.ModeNamedPipe, fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
			if err := mknod(target, h.Mode, h.RdevMajor, h.RdevMinor); err != nil {
				if t == fs.ModeNamedPipe || os.Geteuid() == 0 {
					return st, fmt.Errorf("extract %s: %w", name, err)
				}
				st.Skipped = append(st.Skipped, name)
				continue
			}
			if err := os.Chmod(target, h.Mode); err != nil {
				return st, fmt.Errorf("extract %s: %w", name, err)
			}
		default:
			st.Skipped = append(st.Skipped, name)
			continue
		}
		if opts.Owner {
			if err := os.Lchown(target, int(h.UID), int(h.GID)); err != nil {
				return st, fmt.Errorf("extract %s: %w", name, err)
			}
		}
		if !h.Mode.IsDir() {
			if err := lutimes(target, h.Mtime); err != nil {
				return st, fmt.Errorf("extract %s: %w", name, err)
			}
		}
		st.Entries++
		if opts.Progress != nil && time.Since(last) > time.Second {
			opts.Progress(st.Entries, st.Bytes)
			last = time.Now()
		}
	}
	// Directory modes and times last: a read-only directory would refuse its own entries, and
	// creating entries changes a directory's mtime. Deepest first.
	sort.SliceStable(dirs, func(i, j int) bool { return len(dirs[i].path) > len(dirs[j].path) })
	for _, d := range dirs {
		if err := os.Chmod(d.path, d.mode); err != nil {
			return st, fmt.Errorf("extract: %w", err)
		}
		t := time.Unix(d.mtime, 0)
		if err := os.Chtimes(d.path, t, t); err != nil {
			return st, fmt.Errorf("extract: %w", err)
		}
	}
	if opts.Progress != nil {
		opts.Progress(st.Entries, st.Bytes)
	}
	return st, nil
}

// extractName turns an archive name into a relative slash path; "" is the root itself.
func extractName(name string) (string, error) {
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("absolute name %q refused", name)
	}
	q := name
	for strings.HasPrefix(q, "./") {
		q = strings.TrimLeft(q[2:], "/")
	}
	for _, c := range strings.Split(q, "/") {
		if c == ".." {
			return "", fmt.Errorf("name %q with a .. component refused", name)
		}
	}
	q = path.Clean(q)
	if q == "." {
		return "", nil
	}
	return q, nil
}

// safeParents creates name's missing parent directories inside dir and refuses to go through a
// symlink or a non-directory.
func safeParents(dir, name string) error {
	p := dir
	parts := strings.Split(name, "/")
	for _, c := range parts[:len(parts)-1] {
		p = filepath.Join(p, c)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("parent %s is a symlink; refusing to write through it", c)
		case !fi.IsDir():
			return fmt.Errorf("parent %s is not a directory", c)
		}
	}
	return nil
}

// clearTarget removes an existing entry in the way, as the kernel's clean_path does, keeping a
// directory that is replaced by a directory.
func clearTarget(target string, isDir bool) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() && isDir {
		return nil
	}
	return os.Remove(target)
}

func writeFile(rd *Reader, h *Header, target string, links map[[3]uint32]string, buf []byte) (int64, error) {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if h.Nlink > 1 {
		// newc hard links: every entry but the last has no data; they share one inode.
		key := [3]uint32{h.DevMajor, h.DevMinor, h.Inode}
		if first, ok := links[key]; ok {
			if err := os.Link(first, target); err != nil {
				return 0, err
			}
			flags = os.O_WRONLY
		} else {
			links[key] = target
		}
	}
	f, err := os.OpenFile(target, flags, 0o600)
	if err != nil {
		return 0, err
	}
	n, err := io.CopyBuffer(f, rd, buf)
	if err == nil {
		err = f.Chmod(h.Mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// linkEscapes reports whether a relative symlink target, followed from name's directory, climbs
// above the root. Absolute targets are resolved from the image root and cannot.
func linkEscapes(name, link string) bool {
	if strings.HasPrefix(link, "/") {
		return false
	}
	depth := strings.Count(path.Dir(name), "/") + 1
	if path.Dir(name) == "." {
		depth = 0
	}
	for _, c := range strings.Split(link, "/") {
		switch c {
		case "", ".":
		case "..":
			if depth--; depth < 0 {
				return true
			}
		default:
			depth++
		}
	}
	return false
}
