package distro

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// File is one regular file of a source tree.
type File struct {
	Path    string // slash-separated, relative to the tree root
	Size    int64
	ModTime time.Time
	local   string // on-disk path (symlinks resolved), for hard links; "" in an ISO
	isoPath string // the name go-diskfs knows the file by
}

// source is an install tree being imported: a directory or an ISO image.
type source interface {
	// Files lists the tree's regular files, sorted by path.
	Files() []File
	Open(f File) (io.ReadCloser, error)
	// Identity changes when the source does, so that a resumed import
	// never mixes files from two different sources.
	Identity() string
	// Skipped says what could not be imported (symlinked directories,
	// special files, unsafe names).
	Skipped() []string
	Close() error
	String() string // for messages: the path imported from
}

// openSource opens a directory tree or an ISO9660 image.
func openSource(ctx context.Context, p string) (source, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", p, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if st.IsDir() {
		return openDir(ctx, abs)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("source %s: neither a directory nor an ISO image file", p)
	}
	return openISO(ctx, abs, st)
}

type dirSource struct {
	root    string
	files   []File
	skipped []string
}

func openDir(ctx context.Context, root string) (*dirSource, error) {
	d := &dirSource{root: root}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("read tree: %w", err)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		switch t := e.Type(); {
		case rel == ".":
			return nil
		case t.IsDir():
			return nil
		case t.IsRegular():
			info, err := e.Info()
			if err != nil {
				return fmt.Errorf("read tree: %w", err)
			}
			d.files = append(d.files, File{Path: rel, Size: info.Size(), ModTime: info.ModTime(), local: p})
		case t&fs.ModeSymlink != 0:
			// A symlinked file is imported as the file it points to: the
			// HTTP side serves only files inside the tree, so a link that
			// leads out of it would be a file nobody can fetch.
			target, err := filepath.EvalSymlinks(p)
			var info os.FileInfo
			if err == nil {
				info, err = os.Stat(target)
			}
			switch {
			case err != nil:
				d.skipped = append(d.skipped, rel+": broken symlink")
			case info.Mode().IsRegular():
				d.files = append(d.files, File{Path: rel, Size: info.Size(), ModTime: info.ModTime(), local: target})
			default:
				d.skipped = append(d.skipped, rel+": symlink to a directory, not followed")
			}
		default:
			d.skipped = append(d.skipped, rel+": not a regular file")
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", root, err)
	}
	sortFiles(d.files)
	return d, nil
}

func (d *dirSource) Files() []File     { return d.files }
func (d *dirSource) Identity() string  { return "dir:" + d.root }
func (d *dirSource) Skipped() []string { return d.skipped }
func (d *dirSource) Close() error      { return nil }
func (d *dirSource) String() string    { return d.root }
func (d *dirSource) Open(f File) (io.ReadCloser, error) {
	fh, err := os.Open(f.local)
	if err != nil {
		return nil, err
	}
	return fh, nil
}

func sortFiles(files []File) {
	slices.SortFunc(files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
}

// safeName reports whether a directory entry's name can be used as one path
// element: an ISO is outside input and could name an entry "..".
func safeName(n string) bool {
	return n != "" && n != "." && n != ".." && !strings.ContainsAny(n, "/\\\x00")
}

// readSmall reads a file of the source entirely, refusing one larger than max.
func readSmall(src source, f File, max int64) ([]byte, error) {
	if f.Size > max {
		return nil, fmt.Errorf("%s: %d bytes, more than %d", f.Path, f.Size, max)
	}
	r, err := src.Open(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	defer r.Close()
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", f.Path, err)
	}
	return b, nil
}

func lookup(files []File, p string) (File, bool) {
	i, ok := slices.BinarySearchFunc(files, p, func(f File, p string) int { return strings.Compare(f.Path, p) })
	if !ok {
		return File{}, false
	}
	return files[i], true
}

func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return path.Join(dir, name)
}
