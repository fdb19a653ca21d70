// Package initrd reads, writes and extends Linux initramfs images, and lists squashfs stage2
// images, so that kickstand can inspect vendor installer images and add small overlays (dracut
// hooks, Anaconda updates) without root, loop mounts or rebuilding the vendor image as seed
// 000's addendum did.
//
// # Images are several segments
//
// The kernel's unpack loop (init/initramfs.c) reads a sequence of segments: a bare newc cpio
// archive (dracut's early-microcode segment is one), or a compressed stream (gzip, xz, zstd,
// lz4-legacy, and others) holding one; zero bytes between segments are skipped. Reader follows
// the same rules and reports each segment's compression, offset and exact length, which is what
// lets a listing be compared segment by segment with GNU cpio (which stops at the first trailer).
// Finding a compressed segment's end exactly is the hard part, because the next segment starts at
// the very next byte: gzip's inflater reads a *bufio.Reader byte by byte and never past its
// stream; for xz, zstd and lz4 frames a small "framer" walks the container (LZMA2 chunk headers,
// zstd block headers, lz4 block sizes carry their lengths) and hands the decoder exactly one
// frame; lz4-legacy, which has no end mark, is decoded block by block here and, as in the kernel,
// ends at a zero chunk size or the end of input. bzip2, lzma and lzo are recognised and refused
// with a clear error.
//
// Everything a hostile image could make the reader allocate is bounded by Limits: names and link
// targets by PATH_MAX, segment and entry counts, decompressed bytes, and the xz dictionary and
// zstd window, which are checked from the headers before a decoder allocates them.
//
// # Why the newc code is our own
//
// The brief allowed github.com/cavaliergopher/cpio (already in go.mod). It falls short in ways
// that matter here, measured against v1.0.1:
//   - it drops the dev and rdev fields, so device nodes (dracut's dev/console, c 5 1) cannot be
//     listed or rebuilt, and hard links cannot be told apart across filesystems;
//   - its writer sets the package-level magic to 070702 after any header with a checksum, so every
//     later archive written by the process changes format: shared mutable state;
//   - it does not report where an archive ends, which segment boundaries need, and leaves the
//     trailer's name padding unread.
//
// A newc header is eleven hex fields and a name; the codec is about 150 lines (newc.go), checks
// every field strictly, and verifies 070702 checksums.
//
// # Deterministic output
//
// Write, Build, Overlay and UpdatesImage produce the same bytes for the same files: paths are
// sorted (which puts directories before their contents), implied parent directories are added
// with mode 0755, inodes are numbered from 1 in order, owners are 0:0, mtimes are 0 unless the
// caller sets them, and no device of origin is recorded. Compression settings are fixed: gzip
// level 9 with no name and mtime 0 in its header, xz with the CRC32 check the kernel requires and
// an 8 MiB dictionary, zstd single-threaded with an 8 MiB window. The libraries are pinned in
// go.mod, so the bytes change only when a pinned version does.
//
// # Overlays
//
// Overlay refuses directory entries at bin, sbin, lib, lib64, var/run and var/lock: in merged-/usr
// images those are symlinks, and the kernel's clean_path (like Anaconda's copy of an updates
// image) replaces an existing entry whose type differs, which would turn /lib into an empty
// directory. Append pads with 4 to 7 zero bytes so that the overlay starts 4-byte aligned (the
// kernel's rule for a bare cpio header) and so that an lz4-legacy base segment is terminated.
//
// # Extraction
//
// Extract refuses absolute names, names with a ".." component, relative symlink targets that
// climb out of the destination, and any write through a symlink; absolute symlink targets are
// kept verbatim (they are relative to the image root, and dracut images are full of them).
//
// # squashfs
//
// ListSquashfs reads a stage2 squashfs.img with github.com/diskfs/go-diskfs (v1.7.0, the version
// go.mod pins, which supports the go 1.24 language level of this module). It reads gzip, xz and
// zstd images; its lz4 support reads blocks as lz4 frames and fails on mksquashfs's lz4 images.
package initrd
