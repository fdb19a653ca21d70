package initrd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Compression names how one segment of an initrd is stored.
type Compression string

const (
	None      Compression = "none" // a bare newc archive, as early microcode is stored
	Gzip      Compression = "gzip"
	XZ        Compression = "xz"
	Zstd      Compression = "zstd"
	LZ4       Compression = "lz4"        // lz4 frame format (read only)
	LZ4Legacy Compression = "lz4-legacy" // the format `lz4 -l` writes and the kernel reads (read only)
	// The kernel also knows these; they are recognised so that the error can say which it is.
	Bzip2 Compression = "bzip2"
	LZMA  Compression = "lzma"
	LZO   Compression = "lzo"
)

// ParseCompression accepts the names the CLI offers for writing.
func ParseCompression(s string) (Compression, error) {
	switch c := Compression(s); c {
	case None, Gzip, XZ, Zstd:
		return c, nil
	case "":
		return Gzip, nil
	}
	return "", fmt.Errorf("compression %q: kickstand writes none, gzip, xz or zstd", s)
}

const (
	lz4LegacyMagic = 0x184C2102
	lz4FrameMagic  = 0x184D2204
	zstdMagic      = 0xFD2FB528
	// lz4LegacyBlock is the uncompressed size of every legacy block but the last.
	lz4LegacyBlock = 8 << 20
	zstdMaxBlock   = 128 << 10
)

// detect names the compression from a segment's first bytes, with the magics the kernel's
// decompress_method() uses.
func detect(b []byte) Compression {
	switch {
	case bytes.HasPrefix(b, []byte("07070")):
		return None
	case bytes.HasPrefix(b, []byte{0x1f, 0x8b}), bytes.HasPrefix(b, []byte{0x1f, 0x9e}):
		return Gzip
	case bytes.HasPrefix(b, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return XZ
	case len(b) >= 4 && binary.LittleEndian.Uint32(b) == zstdMagic:
		return Zstd
	case len(b) >= 4 && binary.LittleEndian.Uint32(b) == lz4LegacyMagic:
		return LZ4Legacy
	case len(b) >= 4 && binary.LittleEndian.Uint32(b) == lz4FrameMagic:
		return LZ4
	case bytes.HasPrefix(b, []byte("BZh")):
		return Bzip2
	case bytes.HasPrefix(b, []byte{0x5d, 0}):
		return LZMA
	case bytes.HasPrefix(b, []byte{0x89, 'L', 'Z', 'O', 0}):
		return LZO
	}
	return ""
}

// newDecoder returns the decompressed stream of the segment starting at src's read position.
// The decoder must not consume a byte past the end of its compressed stream, because the next
// segment starts there: gzip's inflater reads a *bufio.Reader byte by byte, and for xz, zstd and
// lz4 frames a framer walks the container format and hands the decoder exactly the frame.
func newDecoder(c Compression, src *bufio.Reader, lim Limits) (io.Reader, func(), error) {
	nop := func() {}
	switch c {
	case Gzip:
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, nop, err
		}
		zr.Multistream(false)
		return zr, nop, nil
	case XZ:
		fr := &framer{src: src, step: xzStep(lim)}
		// DictCap is a minimum: the reader allocates the larger of it and the stream's dictionary,
		// which xzStep has already checked against the limit.
		xr, err := xz.ReaderConfig{DictCap: 4096, SingleStream: true}.NewReader(fr)
		if err != nil {
			return nil, nop, err
		}
		return drainFramer{xr, fr}, nop, nil
	case Zstd:
		fr := &framer{src: src, step: zstdStep(lim)}
		zr, err := zstd.NewReader(fr, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxWindow(uint64(max(lim.MaxWindow, zstd.MinWindowSize))))
		if err != nil {
			return nil, nop, err
		}
		return drainFramer{zr, fr}, zr.Close, nil
	case LZ4:
		fr := &framer{src: src, step: lz4Step()}
		return drainFramer{lz4.NewReader(fr), fr}, nop, nil
	case LZ4Legacy:
		return &lz4Legacy{src: src}, nop, nil
	case Bzip2, LZMA, LZO:
		return nil, nop, fmt.Errorf("%s segments are not supported (kickstand reads gzip, xz, zstd and lz4)", c)
	}
	return nil, nop, fmt.Errorf("unknown compression %q", c)
}

// drainFramer makes the decoder's io.EOF mean "the whole frame was consumed": a decoder that
// stops early would otherwise leave the rest of its frame to be misread as the next segment.
type drainFramer struct {
	io.Reader
	fr *framer
}

func (d drainFramer) Read(p []byte) (int, error) {
	n, err := d.Reader.Read(p)
	if err == io.EOF {
		if _, derr := io.Copy(io.Discard, d.fr); derr != nil {
			return n, derr
		}
		if !d.fr.done {
			return n, errors.New("decoder stopped before the end of its frame")
		}
	}
	return n, err
}

// framer passes exactly one compressed frame from src to a decoder. step parses the next
// structural element with take (those bytes are passed on too) and may schedule opaque payload
// bytes with skip; it sets done after the frame's last byte.
type framer struct {
	src  *bufio.Reader
	step func(f *framer) error
	out  []byte // structural bytes taken but not yet passed on
	body int64  // payload bytes still to pass on
	pos  int64  // bytes of the frame parsed or scheduled so far
	done bool
	err  error
}

func (f *framer) Read(p []byte) (int, error) {
	for len(f.out) == 0 && f.body == 0 {
		if f.err != nil {
			return 0, f.err
		}
		if f.done {
			return 0, io.EOF
		}
		// On an error nothing of the bad element is passed on, so that the framer's error, which
		// says what was wrong, is the one reported rather than the decoder's.
		if f.err = f.step(f); f.err != nil {
			f.out = nil
			return 0, f.err
		}
	}
	if len(f.out) > 0 {
		n := copy(p, f.out)
		f.out = f.out[n:]
		return n, nil
	}
	if int64(len(p)) > f.body {
		p = p[:f.body]
	}
	n, err := f.src.Read(p)
	f.body -= int64(n)
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (f *framer) take(n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(f.src, b); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	f.out = append(f.out, b...)
	f.pos += int64(n)
	return b, nil
}

func (f *framer) skip(n int64) {
	f.body += n
	f.pos += n
}

func (f *framer) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 9; i++ {
		b, err := f.take(1)
		if err != nil {
			return 0, err
		}
		v |= uint64(b[0]&0x7f) << (7 * i)
		if b[0]&0x80 == 0 {
			return v, nil
		}
	}
	return 0, errors.New("xz: varint too long")
}

var xzCheckSize = [16]int{0, 4, 4, 4, 8, 8, 8, 16, 16, 16, 32, 32, 32, 64, 64, 64}

// xzStep walks an xz stream: header, blocks (block header, LZMA2 chunks, padding, check),
// index and footer. LZMA2 chunk headers carry their packed sizes, so the end is found without
// decompressing.
func xzStep(lim Limits) func(*framer) error {
	const (
		stHeader = iota
		stBlock
		stChunk
		stBlockEnd
		stFooter
	)
	state, check := stHeader, 0
	var blockStart int64
	return func(f *framer) error {
		switch state {
		case stHeader:
			b, err := f.take(12)
			if err != nil {
				return err
			}
			if !bytes.Equal(b[:6], []byte{0xfd, '7', 'z', 'X', 'Z', 0}) || b[6] != 0 || b[7]&0xf0 != 0 {
				return errors.New("xz: bad stream header")
			}
			check = xzCheckSize[b[7]]
			state = stBlock
		case stBlock:
			start := f.pos
			b, err := f.take(1)
			if err != nil {
				return err
			}
			if b[0] == 0 {
				return xzIndex(f, start, &state, stFooter)
			}
			// The size byte counts the whole header in 4-byte units, minus one; the last four
			// bytes are its CRC32.
			h, err := f.take(int(b[0])*4 + 3)
			if err != nil {
				return err
			}
			if err := xzBlockHeader(h[:len(h)-4], lim); err != nil {
				return err
			}
			blockStart, state = start, stChunk
		case stChunk:
			b, err := f.take(1)
			if err != nil {
				return err
			}
			switch c := b[0]; {
			case c == 0:
				state = stBlockEnd
			case c == 1 || c == 2:
				s, err := f.take(2)
				if err != nil {
					return err
				}
				f.skip(int64(binary.BigEndian.Uint16(s)) + 1)
			case c >= 0x80:
				n := 4
				if (c>>5)&3 >= 2 {
					n = 5 // a properties byte follows
				}
				s, err := f.take(n)
				if err != nil {
					return err
				}
				f.skip(int64(binary.BigEndian.Uint16(s[2:4])) + 1)
			default:
				return fmt.Errorf("xz: bad LZMA2 chunk control byte %#x", c)
			}
		case stBlockEnd:
			if _, err := f.take(int(pad4(f.pos-blockStart)) + check); err != nil {
				return err
			}
			state = stBlock
		case stFooter:
			b, err := f.take(12)
			if err != nil {
				return err
			}
			if !bytes.Equal(b[10:], []byte("YZ")) {
				return errors.New("xz: bad stream footer")
			}
			f.done = true
		}
		return nil
	}
}

// xzBlockHeader checks what the decoder would allocate: only a plain LZMA2 filter (what the
// kernel documentation and dracut use) with a dictionary within the limit.
func xzBlockHeader(h []byte, lim Limits) error {
	if len(h) == 0 {
		return errors.New("xz: empty block header")
	}
	flags, p := h[0], 1
	if flags&0x3c != 0 {
		return errors.New("xz: reserved block flags set")
	}
	if flags&3 != 0 {
		return errors.New("xz: filter chains (BCJ, delta) are not supported; use plain LZMA2 (xz --check=crc32)")
	}
	for _, present := range []bool{flags&0x40 != 0, flags&0x80 != 0} {
		if !present {
			continue
		}
		for ; p < len(h) && h[p]&0x80 != 0; p++ {
		}
		p++
	}
	if p+3 > len(h) || h[p] != 0x21 || h[p+1] != 1 {
		return errors.New("xz: block filter is not LZMA2")
	}
	d := h[p+2]
	if d > 40 {
		return fmt.Errorf("xz: bad dictionary size code %d", d)
	}
	dict := int64(2|d&1) << (d/2 + 11)
	if dict > lim.MaxWindow {
		return fmt.Errorf("xz: dictionary of %d bytes exceeds the limit of %d", dict, lim.MaxWindow)
	}
	return nil
}

func xzIndex(f *framer, start int64, state *int, next int) error {
	n, err := f.varint()
	if err != nil {
		return err
	}
	if n > 1<<20 {
		return fmt.Errorf("xz: index with %d records", n)
	}
	for i := uint64(0); i < 2*n; i++ {
		if _, err := f.varint(); err != nil {
			return err
		}
	}
	if _, err := f.take(int(pad4(f.pos-start)) + 4); err != nil {
		return err
	}
	*state = next
	return nil
}

// zstdStep walks one zstd frame: header, blocks (3-byte headers with their sizes) and the
// optional checksum.
func zstdStep(lim Limits) func(*framer) error {
	state, checksum := 0, false
	return func(f *framer) error {
		switch state {
		case 0:
			b, err := f.take(5)
			if err != nil {
				return err
			}
			if binary.LittleEndian.Uint32(b) != zstdMagic {
				return errors.New("zstd: bad frame magic")
			}
			fhd := b[4]
			if fhd&0x08 != 0 {
				return errors.New("zstd: reserved frame header bit set")
			}
			single := fhd&0x20 != 0
			checksum = fhd&0x04 != 0
			didSize := [4]int{0, 1, 2, 4}[fhd&3]
			fcsSize := [4]int{0, 2, 4, 8}[fhd>>6]
			if fcsSize == 0 && single {
				fcsSize = 1
			}
			n := didSize + fcsSize
			if !single {
				n++
			}
			h, err := f.take(n)
			if err != nil {
				return err
			}
			var window uint64
			if !single {
				exp, mant := uint64(h[0]>>3), uint64(h[0]&7)
				base := uint64(1) << (10 + exp)
				window = base + base/8*mant
			} else {
				fcs := h[len(h)-fcsSize:]
				var v [8]byte
				copy(v[:], fcs)
				window = binary.LittleEndian.Uint64(v[:])
				if fcsSize == 2 {
					window += 256
				}
			}
			if window > uint64(lim.MaxWindow) {
				return fmt.Errorf("zstd: window of %d bytes exceeds the limit of %d", window, lim.MaxWindow)
			}
			state = 1
		case 1:
			b, err := f.take(3)
			if err != nil {
				return err
			}
			v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
			size := int64(v >> 3)
			switch (v >> 1) & 3 {
			case 0, 2:
				if size > zstdMaxBlock {
					return fmt.Errorf("zstd: block of %d bytes", size)
				}
				f.skip(size)
			case 1:
				f.skip(1)
			default:
				return errors.New("zstd: reserved block type")
			}
			if v&1 != 0 {
				state = 2
			}
		case 2:
			if checksum {
				if _, err := f.take(4); err != nil {
					return err
				}
			}
			f.done = true
		}
		return nil
	}
}

// lz4Step walks one lz4 frame: descriptor, size-prefixed blocks up to the zero end mark, and the
// optional content checksum.
func lz4Step() func(*framer) error {
	state, flg, blockMax := 0, byte(0), int64(0)
	return func(f *framer) error {
		switch state {
		case 0:
			b, err := f.take(6)
			if err != nil {
				return err
			}
			if binary.LittleEndian.Uint32(b) != lz4FrameMagic {
				return errors.New("lz4: bad frame magic")
			}
			flg = b[4]
			if flg>>6 != 1 {
				return fmt.Errorf("lz4: frame version %d", flg>>6)
			}
			id := (b[5] >> 4) & 7
			if id < 4 {
				return fmt.Errorf("lz4: bad block size id %d", id)
			}
			blockMax = 1 << (8 + 2*int(id))
			n := 1
			if flg&0x08 != 0 {
				n += 8
			}
			if flg&0x01 != 0 {
				n += 4
			}
			if _, err := f.take(n); err != nil {
				return err
			}
			state = 1
		case 1:
			b, err := f.take(4)
			if err != nil {
				return err
			}
			v := binary.LittleEndian.Uint32(b)
			if v == 0 {
				state = 2
				return nil
			}
			size := int64(v & 0x7fffffff)
			if size > blockMax {
				return fmt.Errorf("lz4: block of %d bytes exceeds the frame's %d", size, blockMax)
			}
			if flg&0x10 != 0 {
				size += 4
			}
			f.skip(size)
		case 2:
			if flg&0x04 != 0 {
				if _, err := f.take(4); err != nil {
					return err
				}
			}
			f.done = true
		}
		return nil
	}
}

// lz4Legacy decodes the legacy format the kernel reads: a magic, then blocks of at most 8 MiB
// output, each prefixed by its compressed size. The format has no end mark; like the kernel, a
// zero size (padding), the end of input, or fewer than four bytes end it.
type lz4Legacy struct {
	src     *bufio.Reader
	started bool
	done    bool
	in, buf []byte
	out     []byte
}

func (l *lz4Legacy) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if l.done {
			return 0, io.EOF
		}
		if err := l.fill(); err != nil {
			return 0, err
		}
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

func (l *lz4Legacy) fill() error {
	if !l.started {
		if _, err := l.src.Discard(4); err != nil {
			return io.ErrUnexpectedEOF
		}
		l.started = true
	}
	b, err := l.src.Peek(4)
	if err != nil {
		l.done = true
		return nil
	}
	size := binary.LittleEndian.Uint32(b)
	switch {
	case size == 0:
		l.done = true
		return nil
	case size == lz4LegacyMagic:
		_, err := l.src.Discard(4)
		return err
	case int(size) > lz4.CompressBlockBound(lz4LegacyBlock):
		return fmt.Errorf("lz4 legacy chunk of %d bytes is larger than a block can be", size)
	}
	l.src.Discard(4)
	if l.buf == nil {
		l.buf = make([]byte, lz4LegacyBlock)
	}
	if cap(l.in) < int(size) {
		l.in = make([]byte, size)
	}
	in := l.in[:size]
	if _, err := io.ReadFull(l.src, in); err != nil {
		return io.ErrUnexpectedEOF
	}
	n, err := lz4.UncompressBlock(in, l.buf)
	if err != nil {
		return fmt.Errorf("lz4 legacy block: %w", err)
	}
	l.out = l.buf[:n]
	return nil
}

// compress writes data compressed with c. Every setting that changes the output is fixed here,
// so the same input always gives the same bytes with the same library versions (go.mod pins
// them): gzip at level 9 with no name or mtime in the header, xz with the CRC32 check the
// kernel's decoder requires, zstd single-threaded at its best-compression level.
func compress(w io.Writer, c Compression, data []byte) error {
	switch c {
	case None:
		_, err := w.Write(data)
		return err
	case Gzip:
		zw, err := gzip.NewWriterLevel(w, gzip.BestCompression)
		if err != nil {
			return err
		}
		// This gzip writes the zero time.Time as a garbage timestamp; the epoch is stored as 0.
		zw.ModTime = time.Unix(0, 0)
		if _, err := zw.Write(data); err != nil {
			return err
		}
		return zw.Close()
	case XZ:
		xw, err := xz.WriterConfig{CheckSum: xz.CRC32, DictCap: 8 << 20}.NewWriter(w)
		if err != nil {
			return err
		}
		if _, err := xw.Write(data); err != nil {
			return err
		}
		return xw.Close()
	case Zstd:
		zw, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedBestCompression),
			zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(8<<20), zstd.WithEncoderCRC(true))
		if err != nil {
			return err
		}
		defer zw.Close()
		_, err = w.Write(zw.EncodeAll(data, nil))
		return err
	}
	return fmt.Errorf("compression %q: kickstand writes none, gzip, xz or zstd", c)
}
