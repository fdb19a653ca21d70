package initrd

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// Limits bound what a Reader accepts, so that a hostile or broken image costs bounded memory and
// time. The zero value of a field means its default.
type Limits struct {
	MaxSegments int   // default 64; dracut writes two
	MaxEntries  int   // entries in all segments, default 1<<20
	MaxBytes    int64 // decompressed bytes in all segments, default 64 GiB
	// MaxWindow caps a decoder's allocation: an xz dictionary or a zstd window. The default,
	// 256 MiB, is above what `xz -9` (64 MiB) or `zstd --long=27` (128 MiB) use.
	MaxWindow int64
}

func (l Limits) withDefaults() Limits {
	if l.MaxSegments <= 0 {
		l.MaxSegments = 64
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = 1 << 20
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = 64 << 30
	}
	if l.MaxWindow <= 0 {
		l.MaxWindow = 256 << 20
	}
	return l
}

// SegmentInfo locates one segment in the image. A segment is one compressed stream (or one bare
// cpio archive) as the kernel's unpack loop sees it.
type SegmentInfo struct {
	Index       int
	Offset      int64 // of the segment's first byte in the image, after any zero padding
	Length      int64 // bytes of the image the segment occupies; set once it has been read
	Compression Compression
	// Archives counts the cpio archives in the stream (usually one; the kernel accepts several
	// back to back in one compressed stream).
	Archives int
}

func (s SegmentInfo) String() string {
	return fmt.Sprintf("segment %d (%s at offset %d)", s.Index, s.Compression, s.Offset)
}

// Reader streams the entries of an initrd across all of its segments, like archive/tar's
// Reader: Next moves to the next entry and Read reads its data.
type Reader struct {
	lim   Limits
	cnt   countReader
	src   *bufio.Reader
	segs  []SegmentInfo
	seg   *segment // nil between segments
	hdr   *Header  // current entry
	left  int64    // data bytes of hdr not yet read
	sum   uint32   // byte sum of hdr's data so far (070702)
	total int64    // decompressed bytes consumed
	count int      // entries returned
	err   error
}

type segment struct {
	idx     int           // in Reader.segs
	r       *bufio.Reader // the cpio stream: src itself for an uncompressed segment
	pos     int64         // offset in the cpio stream, for newc's 4-byte alignment
	close   func()
	trailer bool // the current archive's trailer was read
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// NewReader reads an initrd from r with default Limits.
func NewReader(r io.Reader) *Reader { return NewReaderLimits(r, Limits{}) }

// NewReaderLimits reads an initrd from r within lim.
func NewReaderLimits(r io.Reader, lim Limits) *Reader {
	rd := &Reader{lim: lim.withDefaults(), cnt: countReader{r: r}}
	rd.src = bufio.NewReaderSize(&rd.cnt, 64<<10)
	return rd
}

// offset is the image offset of the next unread byte: what was read from the image minus what
// bufio holds. Decoders read src directly, so this stays exact.
func (r *Reader) offset() int64 { return r.cnt.n - int64(r.src.Buffered()) }

// Segments returns the segments seen so far; the last one's Length is 0 while it is being read.
func (r *Reader) Segments() []SegmentInfo { return append([]SegmentInfo(nil), r.segs...) }

// Segment returns the index of the segment the current entry belongs to.
func (r *Reader) Segment() int { return len(r.segs) - 1 }

func (r *Reader) info() SegmentInfo { return r.segs[r.seg.idx] }

// Close releases decoder resources. It does not close the underlying reader.
func (r *Reader) Close() error {
	if r.seg != nil {
		r.seg.close()
		r.seg = nil
	}
	if r.err == nil {
		r.err = errors.New("initrd: reader closed")
	}
	return nil
}

// Next advances to the next entry and returns its header; io.EOF means the image ended cleanly.
// The "TRAILER!!!" records are not returned.
func (r *Reader) Next() (*Header, error) {
	if r.err != nil {
		return nil, r.err
	}
	h, err := r.next()
	if err != nil {
		if r.seg != nil {
			// Inside a segment even a clean io.EOF means the input stopped mid-record.
			err = fmt.Errorf("%s: %w", r.info(), truncated(err))
			r.seg.close()
			r.seg = nil
		}
		r.hdr, r.err = nil, err
	}
	return h, err
}

// truncated turns a short read into an error that says what happened.
func truncated(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("truncated: %w", io.ErrUnexpectedEOF)
	}
	return err
}

func (r *Reader) next() (*Header, error) {
	for {
		if r.seg == nil {
			ok, err := r.startSegment()
			if err != nil || !ok {
				return nil, err
			}
		}
		if err := r.skipRest(); err != nil {
			return nil, err
		}
		if r.seg.trailer {
			if err := r.afterTrailer(); err != nil {
				return nil, err
			}
			continue
		}
		h, err := r.readHeader()
		if err != nil {
			return nil, err
		}
		if h != nil {
			return h, nil
		}
	}
}

// startSegment skips zero padding and opens the next segment; false means the image ended.
func (r *Reader) startSegment() (bool, error) {
	for {
		b, err := r.src.Peek(1)
		if err == io.EOF {
			return false, io.EOF
		}
		if err != nil {
			return false, err
		}
		if b[0] != 0 {
			break
		}
		// Skip a whole run of zeros at once: GNU cpio pads archives to 512 bytes.
		buf, _ := r.src.Peek(r.src.Buffered())
		n := 0
		for n < len(buf) && buf[n] == 0 {
			n++
		}
		r.src.Discard(n)
	}
	off := r.offset()
	if len(r.segs) >= r.lim.MaxSegments {
		return false, fmt.Errorf("more than %d segments at offset %d", r.lim.MaxSegments, off)
	}
	magic, _ := r.src.Peek(16)
	c := detect(magic)
	if c == "" {
		return false, fmt.Errorf("offset %d: unknown data % x: neither a cpio archive nor a known compression", off, magic)
	}
	r.segs = append(r.segs, SegmentInfo{Index: len(r.segs), Offset: off, Compression: c})
	seg := &segment{idx: len(r.segs) - 1, close: func() {}}
	if c == None {
		// The kernel only takes a '0' as a header at a 4-byte aligned offset.
		if off%4 != 0 {
			return false, fmt.Errorf("%s: cpio archive at an unaligned offset", r.segs[seg.idx])
		}
		seg.r = r.src
	} else {
		dec, closeDec, err := newDecoder(c, r.src, r.lim)
		if err != nil {
			return false, fmt.Errorf("%s: %w", r.segs[seg.idx], truncated(err))
		}
		seg.r, seg.close = bufio.NewReaderSize(dec, 64<<10), closeDec
	}
	r.segs[seg.idx].Archives = 1
	r.seg = seg
	return true, nil
}

// afterTrailer ends the segment, or starts the next archive in the same compressed stream.
func (r *Reader) afterTrailer() error {
	seg := r.seg
	if r.segs[seg.idx].Compression != None {
		for {
			b, err := seg.r.Peek(1)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			if b[0] != 0 {
				if seg.pos%4 == 0 && b[0] == '0' {
					r.segs[seg.idx].Archives++
					seg.trailer = false
					return nil
				}
				return fmt.Errorf("data after the cpio trailer at stream offset %d", seg.pos)
			}
			if err := r.discard(1); err != nil {
				return err
			}
		}
	}
	r.segs[seg.idx].Length = r.offset() - r.segs[seg.idx].Offset
	seg.close()
	r.seg = nil
	return nil
}

func (r *Reader) account(n int) error {
	r.seg.pos += int64(n)
	r.total += int64(n)
	if r.total > r.lim.MaxBytes {
		return fmt.Errorf("more than %d decompressed bytes", r.lim.MaxBytes)
	}
	return nil
}

func (r *Reader) readFull(b []byte) error {
	n, err := io.ReadFull(r.seg.r, b)
	if aerr := r.account(n); aerr != nil {
		return aerr
	}
	return err
}

func (r *Reader) discard(n int64) error {
	for n > 0 {
		k, err := r.seg.r.Discard(int(min(n, 1<<20)))
		n -= int64(k)
		if aerr := r.account(k); aerr != nil {
			return aerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// readHeader reads one record's header, name and symlink target. It returns nil, nil for the
// trailer.
func (r *Reader) readHeader() (*Header, error) {
	var buf [headerLen]byte
	if err := r.readFull(buf[:]); err != nil {
		if err == io.EOF {
			return nil, errors.New("no cpio trailer")
		}
		return nil, err
	}
	at := r.seg.pos - headerLen
	h, nameSize, rawMode, err := parseHeader(buf[:])
	if err != nil {
		return nil, fmt.Errorf("stream offset %d: %w", at, err)
	}
	name := make([]byte, nameSize)
	if err := r.readFull(name); err != nil {
		return nil, err
	}
	if name[nameSize-1] != 0 {
		return nil, fmt.Errorf("stream offset %d: cpio name is not NUL-terminated", at)
	}
	h.Name = string(name[:nameSize-1])
	if err := r.discard(pad4(r.seg.pos)); err != nil {
		return nil, err
	}
	if h.Name == trailerName {
		r.seg.trailer = true
		r.hdr, r.left = nil, h.Size
		return nil, nil
	}
	if rawMode == 0 {
		return nil, fmt.Errorf("stream offset %d: entry %q has no file type", at, h.Name)
	}
	if r.count++; r.count > r.lim.MaxEntries {
		return nil, fmt.Errorf("more than %d entries", r.lim.MaxEntries)
	}
	r.hdr, r.left, r.sum = h, h.Size, 0
	if h.Mode.Type() == fs.ModeSymlink {
		if h.Size < 1 || h.Size > maxName {
			return nil, fmt.Errorf("stream offset %d: symlink %q target of %d bytes", at, h.Name, h.Size)
		}
		link := make([]byte, h.Size)
		if err := r.readFull(link); err != nil {
			return nil, err
		}
		h.Link, r.left = string(link), 0
	}
	return h, nil
}

// skipRest discards what is left of the current entry's data and its padding.
func (r *Reader) skipRest() error {
	if r.hdr != nil && r.hdr.CRC && r.left > 0 && r.hdr.Mode.IsRegular() {
		// The checksum needs the bytes.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return err
		}
	}
	if err := r.discard(r.left); err != nil {
		return err
	}
	r.left = 0
	r.hdr = nil
	return r.discard(pad4(r.seg.pos))
}

// Read reads the current entry's data.
func (r *Reader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	if r.hdr == nil || r.left == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.seg.r.Read(p)
	r.left -= int64(n)
	if aerr := r.account(n); aerr != nil {
		err = aerr
	}
	if r.hdr.CRC {
		for _, b := range p[:n] {
			r.sum += uint32(b)
		}
		if r.left == 0 && r.hdr.Mode.IsRegular() && r.sum != r.hdr.Checksum {
			err = fmt.Errorf("%s: %s: checksum %#x, header says %#x", r.info(), r.hdr.Name, r.sum, r.hdr.Checksum)
		}
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		err = fmt.Errorf("%s: %s: %w", r.info(), r.hdr.Name, truncated(err))
		r.err = err
	}
	return n, err
}

// Segment is a segment with its entries, as List returns them.
type Segment struct {
	SegmentInfo
	Entries []Header
}

// List reads a whole initrd and returns its segments and their entries, in archive order.
func List(r io.Reader, lim Limits) ([]Segment, error) {
	rd := NewReaderLimits(r, lim)
	defer rd.Close()
	var segs []Segment
	for {
		h, err := rd.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return segs, err
		}
		for len(segs) <= rd.Segment() {
			segs = append(segs, Segment{})
		}
		segs[rd.Segment()].Entries = append(segs[rd.Segment()].Entries, *h)
	}
	infos := rd.Segments()
	for len(segs) < len(infos) {
		segs = append(segs, Segment{})
	}
	for i := range segs {
		segs[i].SegmentInfo = infos[i]
	}
	return segs, nil
}
