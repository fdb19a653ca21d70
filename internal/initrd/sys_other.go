//go:build !linux

package initrd

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

func mknod(string, fs.FileMode, uint32, uint32) error {
	return errors.New("device nodes and FIFOs are only created on Linux")
}

func rdev(fs.FileInfo) (uint32, uint32) { return 0, 0 }

func lutimes(path string, mtime int64) error {
	t := time.Unix(mtime, 0)
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		return nil // no portable way to set a symlink's own times
	}
	return os.Chtimes(path, t, t)
}
