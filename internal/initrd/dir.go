package initrd

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// FilesFromDir reads a directory tree into Files for Write, Overlay or UpdatesImage. Owners are
// dropped (everything is 0:0) and mtimes are 0 unless keepMtime, so that the same tree gives the
// same archive on any host. Hard links become separate files.
func FilesFromDir(dir string, keepMtime bool) ([]File, error) {
	var files []File
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		f := File{Path: filepath.ToSlash(rel), Mode: fi.Mode()}
		if keepMtime {
			f.ModTime = fi.ModTime().Unix()
		}
		switch fi.Mode().Type() {
		case 0:
			if f.Data, err = os.ReadFile(p); err != nil {
				return err
			}
		case fs.ModeSymlink:
			if f.Link, err = os.Readlink(p); err != nil {
				return err
			}
		case fs.ModeDevice, fs.ModeDevice | fs.ModeCharDevice:
			f.Major, f.Minor = rdev(fi)
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	return files, nil
}

// Pack writes the tree under dir as one deterministic segment: the seed-000 way of rebuilding a
// whole image after editing it (`find . | cpio -o -H newc | gzip`), minus the host's owners,
// inode numbers and timestamps.
func Pack(w io.Writer, dir string, comp Compression, keepMtime bool) error {
	files, err := FilesFromDir(dir, keepMtime)
	if err != nil {
		return fmt.Errorf("pack: %w", err)
	}
	if err := Write(w, files, comp); err != nil {
		return fmt.Errorf("pack %s: %w", dir, err)
	}
	return nil
}
