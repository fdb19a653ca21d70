//go:build unix

package inventory

import (
	"io/fs"
	"syscall"
)

// inode tells a file replaced by rename from the same file edited in place
// within one timestamp tick.
func inode(st fs.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return uint64(s.Ino)
	}
	return 0
}
