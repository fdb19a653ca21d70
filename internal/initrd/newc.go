package initrd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
)

// The newc ("SVR4 portable") format is the only cpio format the kernel unpacks: a 110-byte ASCII
// header of 8-digit hex fields, the NUL-terminated name, zero padding to 4 bytes, the data, and
// zero padding to 4 bytes again. Offsets are counted from the start of the stream, as the kernel
// does, which is why an uncompressed archive must itself start 4-byte aligned.
const (
	headerLen   = 110
	trailerName = "TRAILER!!!"
	// maxName matches the kernel's PATH_MAX check on names and symlink targets.
	maxName = 4096
)

var (
	magicNewc    = []byte("070701")
	magicNewcCRC = []byte("070702")
)

// Header is one newc record. Sizes and numbers are the archive's, unchanged, so that a listing
// shows what the kernel will see.
type Header struct {
	Name  string      // as stored: no leading "/" or "./" in well-formed archives
	Mode  fs.FileMode // type, permissions and setuid/setgid/sticky, in Go's encoding
	UID   uint32
	GID   uint32
	Nlink uint32
	Mtime int64 // seconds since the epoch
	// Size is the length of the data. For a symlink it is the length of Link, whose bytes are
	// the data.
	Size  int64
	Link  string // symlink target
	Inode uint32
	// DevMajor and DevMinor name the filesystem the file came from; with Inode they identify
	// hard links. RdevMajor and RdevMinor are a device node's numbers.
	DevMajor, DevMinor   uint32
	RdevMajor, RdevMinor uint32
	// CRC is set for the 070702 variant, whose Checksum is the byte sum of the data.
	CRC      bool
	Checksum uint32
}

// cpio file-type bits (S_IFMT), as stored in the mode field.
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

// goMode converts a stored mode to Go's encoding.
func goMode(m uint32) (fs.FileMode, error) {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	switch m & sIFMT {
	case sIFREG:
	case sIFDIR:
		mode |= fs.ModeDir
	case sIFLNK:
		mode |= fs.ModeSymlink
	case sIFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case sIFBLK:
		mode |= fs.ModeDevice
	case sIFIFO:
		mode |= fs.ModeNamedPipe
	case sIFSOCK:
		mode |= fs.ModeSocket
	default:
		return 0, fmt.Errorf("unknown file type %#o", m&sIFMT)
	}
	return mode, nil
}

// cpioMode converts Go's encoding to the stored mode; a mode without a type is a regular file.
func cpioMode(mode fs.FileMode) (uint32, error) {
	m := uint32(mode.Perm())
	if mode&fs.ModeSetuid != 0 {
		m |= 0o4000
	}
	if mode&fs.ModeSetgid != 0 {
		m |= 0o2000
	}
	if mode&fs.ModeSticky != 0 {
		m |= 0o1000
	}
	switch t := mode.Type(); t {
	case 0:
		m |= sIFREG
	case fs.ModeDir:
		m |= sIFDIR
	case fs.ModeSymlink:
		m |= sIFLNK
	case fs.ModeDevice | fs.ModeCharDevice:
		m |= sIFCHR
	case fs.ModeDevice:
		m |= sIFBLK
	case fs.ModeNamedPipe:
		m |= sIFIFO
	case fs.ModeSocket:
		m |= sIFSOCK
	default:
		return 0, fmt.Errorf("file type %v has no cpio equivalent", t)
	}
	return m, nil
}

var errTrailer = errors.New("cpio trailer")

// parseHeader decodes the fixed part of a header. Unlike the kernel's lenient simple_strtoul,
// every field must be exactly eight hex digits, so that garbage is reported where it starts.
func parseHeader(b []byte) (h *Header, nameSize int64, rawMode uint32, err error) {
	if len(b) < headerLen {
		return nil, 0, 0, io.ErrUnexpectedEOF
	}
	switch {
	case bytes.Equal(b[:6], magicNewc):
	case bytes.Equal(b[:6], magicNewcCRC):
	case bytes.Equal(b[:6], []byte("070707")):
		return nil, 0, 0, errors.New("old portable (odc) cpio header: the kernel reads only newc")
	default:
		return nil, 0, 0, fmt.Errorf("bad cpio magic %q", b[:6])
	}
	var f [13]uint32
	for i := range f {
		field := b[6+8*i : 14+8*i]
		v, err := strconv.ParseUint(string(field), 16, 32)
		if err != nil {
			return nil, 0, 0, fmt.Errorf("bad cpio header field %d %q", i, field)
		}
		f[i] = uint32(v)
	}
	h = &Header{
		Inode: f[0], UID: f[2], GID: f[3], Nlink: f[4], Mtime: int64(f[5]), Size: int64(f[6]),
		DevMajor: f[7], DevMinor: f[8], RdevMajor: f[9], RdevMinor: f[10],
		CRC: b[5] == '2', Checksum: f[12],
	}
	if f[11] < 1 || f[11] > maxName {
		return nil, 0, 0, fmt.Errorf("cpio name size %d out of range 1..%d", f[11], maxName)
	}
	if !h.CRC && h.Checksum != 0 {
		return nil, 0, 0, fmt.Errorf("cpio checksum %#x set in a 070701 header", h.Checksum)
	}
	// GNU cpio's trailer has mode 0, which is no file type; the caller checks the name.
	if f[1] != 0 {
		if h.Mode, err = goMode(f[1]); err != nil {
			return nil, 0, 0, err
		}
	}
	return h, int64(f[11]), f[1], nil
}

// pad4 is the number of zero bytes that align off to 4.
func pad4(off int64) int64 { return (4 - off&3) & 3 }

var zeros [4]byte

// writeHeader encodes h (with the stored mode m) at stream offset off and returns the bytes
// written, name padding included.
func writeHeader(w io.Writer, h *Header, m uint32, off int64) (int64, error) {
	var b bytes.Buffer
	b.Grow(headerLen + len(h.Name) + 4)
	if h.CRC {
		b.Write(magicNewcCRC)
	} else {
		b.Write(magicNewc)
	}
	for _, v := range []uint32{h.Inode, m, h.UID, h.GID, h.Nlink, uint32(h.Mtime), uint32(h.Size),
		h.DevMajor, h.DevMinor, h.RdevMajor, h.RdevMinor, uint32(len(h.Name) + 1), h.Checksum} {
		fmt.Fprintf(&b, "%08X", v)
	}
	b.WriteString(h.Name)
	b.WriteByte(0)
	b.Write(zeros[:pad4(off+int64(b.Len()))])
	n, err := w.Write(b.Bytes())
	return int64(n), err
}
