//go:build !linux

package fswatch

import (
	"context"
	"errors"
	"io/fs"
)

func inode(fs.FileInfo) uint64 { return 0 }

func notify(context.Context, func() []string) (<-chan struct{}, func(), error) {
	return nil, nil, errors.New("inotify is Linux only")
}
