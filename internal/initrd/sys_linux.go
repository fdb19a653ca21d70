package initrd

import (
	"io/fs"
	"os"
	"syscall"
	"unsafe"
)

// mknod creates a device node or FIFO. Device numbers use the kernel's encoding of dev_t.
func mknod(path string, mode fs.FileMode, major, minor uint32) error {
	m, err := cpioMode(mode)
	if err != nil {
		return err
	}
	dev := uint64(minor&0xff) | uint64(major&0xfff)<<8 | uint64(minor&^0xff)<<12 | uint64(major&^0xfff)<<32
	return syscall.Mknod(path, m, int(dev))
}

// rdev returns a device node's numbers from its FileInfo.
func rdev(fi fs.FileInfo) (major, minor uint32) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0
	}
	d := uint64(st.Rdev)
	return uint32((d>>8)&0xfff | (d>>32)&^0xfff), uint32(d&0xff | (d>>12)&^0xff)
}

// lutimes sets a path's mtime without following a symlink, which os.Chtimes cannot do, so that
// symlinks round-trip through extract and pack with kept mtimes.
func lutimes(path string, mtime int64) error {
	p, err := syscall.BytePtrFromString(path)
	if err != nil {
		return err
	}
	const atFdcwd, atSymlinkNofollow = -100, 0x100
	ts := [2]syscall.Timespec{{Sec: mtime}, {Sec: mtime}}
	_, _, errno := syscall.Syscall6(syscall.SYS_UTIMENSAT, uintptr(atFdcwd&0xffffffffffffffff), uintptr(unsafe.Pointer(p)),
		uintptr(unsafe.Pointer(&ts[0])), atSymlinkNofollow, 0, 0)
	if errno != 0 {
		return &os.PathError{Op: "utimensat", Path: path, Err: errno}
	}
	return nil
}
