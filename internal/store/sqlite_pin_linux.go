//go:build linux && (amd64 || arm64 || loong64) && !libc.membrk && !libc.memgrind

package store

import "modernc.org/libc"

// pinAllocator keeps one block of every small size class of modernc's C
// heap allocated while the store is open. That heap gives a size class a
// fresh 1 MiB mapping when it has no free slot and unmaps it as soon as
// its last block is freed, so a class used one block at a time (the
// scratch space SQLite takes at every B-tree page split, a statement's
// parse) cost an mmap, page faults and a munmap per use: half the CPU of
// a 100,000-host first sync. A pinned block keeps each class's page.
func pinAllocator() func() error {
	tls := libc.NewTLS()
	var blocks []uintptr
	for log := 4; log <= 18; log++ { // 16 B to 256 KiB, the slab classes
		if p := libc.Xmalloc(tls, libc.Tsize_t(1)<<log); p != 0 {
			blocks = append(blocks, p)
		}
	}
	return func() error {
		for _, p := range blocks {
			libc.Xfree(tls, p)
		}
		tls.Close()
		return nil
	}
}
