//go:build !linux

package initrd

import (
	"errors"
	"io/fs"
)

func mknod(string, fs.FileMode, uint32, uint32) error {
	return errors.New("device nodes and FIFOs are only created on Linux")
}

func rdev(fs.FileInfo) (uint32, uint32) { return 0, 0 }
