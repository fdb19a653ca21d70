package distro

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"strconv"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// ISO9660 constants (ECMA-119): the volume descriptors start at sector 16,
// and the primary one records the volume size and the logical block size.
const (
	isoSector        = 2048
	isoPVDOffset     = 16 * isoSector
	isoMaxDepth      = 64 // deeper than any install tree; stops a looping image
	isoMaxEntries    = 1 << 20
	pvdVolumeBlocks  = 80  // both-endian uint32, little-endian half first
	pvdLogicalBlock  = 128 // both-endian uint16
	volDescPrimary   = 1
	volDescStdIdent  = "CD001"
	volDescIdentFrom = 1
)

type isoSource struct {
	path    string
	f       *os.File
	size    int64
	mtime   int64
	fs      *iso9660.FileSystem
	files   []File
	skipped []string
	// extents maps a file's path to the byte offset of its data, when
	// go-diskfs's entry yielded it (see rawEntry).
	extents map[string]int64
}

func openISO(ctx context.Context, p string, st os.FileInfo) (src *isoSource, err error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("iso %s: %w", p, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if err := checkVolume(f, st.Size()); err != nil {
		return nil, fmt.Errorf("iso %s: %w", p, err)
	}
	s := &isoSource{path: p, f: f, size: st.Size(), mtime: st.ModTime().UnixNano(), extents: map[string]int64{}}
	err = guard(func() error {
		var err error
		s.fs, err = iso9660.Read(strictBackend{Storage: file.New(f, true), size: st.Size()}, st.Size(), 0, isoSector)
		if err != nil {
			return err
		}
		return s.walk(ctx, "/", "", 0)
	})
	if err != nil {
		return nil, fmt.Errorf("iso %s: unreadable ISO9660 image: %w", p, err)
	}
	sortFiles(s.files)
	return s, nil
}

// checkVolume reads the primary volume descriptor itself so that a file
// that is not an ISO, or one cut short, is refused up front with a plain
// reason instead of failing halfway through a copy.
func checkVolume(f *os.File, size int64) error {
	pvd := make([]byte, isoSector)
	if _, err := f.ReadAt(pvd, isoPVDOffset); err != nil {
		return fmt.Errorf("not an ISO9660 image: only %d bytes, no volume descriptor at byte %d", size, isoPVDOffset)
	}
	if pvd[0] != volDescPrimary || string(pvd[volDescIdentFrom:volDescIdentFrom+len(volDescStdIdent)]) != volDescStdIdent {
		return fmt.Errorf("not an ISO9660 image: no primary volume descriptor (CD001) at byte %d", isoPVDOffset)
	}
	blocks := int64(binary.LittleEndian.Uint32(pvd[pvdVolumeBlocks:]))
	bs := int64(binary.LittleEndian.Uint16(pvd[pvdLogicalBlock:]))
	if bs != isoSector {
		return fmt.Errorf("logical block size %d: only %d-byte blocks are supported", bs, isoSector)
	}
	if want := blocks * bs; size < want {
		return fmt.Errorf("truncated: the volume descriptor says %d bytes, the file has %d", want, size)
	}
	return nil
}

// guard turns a panic inside the ISO reader into an error: the image is
// outside input, and a malformed one must not take kickstand down.
func guard(fn func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("malformed image (reader failed: %v)", r)
		}
	}()
	return fn()
}

func (s *isoSource) walk(ctx context.Context, dir, rel string, depth int) error {
	if depth > isoMaxDepth {
		return fmt.Errorf("%s: directories nested deeper than %d", dir, isoMaxDepth)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := s.fs.ReadDir(dir)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, e := range entries {
		raw := rawEntry(e)
		name := e.Name()
		if raw.rrName != "" && !e.IsDir() {
			name = raw.rrName
		}
		relPath := joinRel(rel, name)
		switch {
		case !safeName(name):
			s.skipped = append(s.skipped, strconv.Quote(relPath)+": unsafe name")
			continue
		case seen[name]:
			s.skipped = append(s.skipped, relPath+": duplicate name")
			continue
		case len(s.files) > isoMaxEntries:
			return fmt.Errorf("more than %d files", isoMaxEntries)
		}
		seen[name] = true
		libPath := dir + e.Name()
		switch {
		case e.IsDir():
			if err := s.walk(ctx, libPath+"/", relPath, depth+1); err != nil {
				return err
			}
		case e.Mode()&os.ModeSymlink != 0:
			s.skipped = append(s.skipped, relPath+": symlink in the image, not imported")
		default:
			s.files = append(s.files, File{Path: relPath, Size: e.Size(), ModTime: e.ModTime(), isoPath: libPath})
			if raw.hasExtent {
				s.extents[relPath] = raw.extent * isoSector
			}
		}
	}
	return nil
}

func (s *isoSource) Files() []File     { return s.files }
func (s *isoSource) Skipped() []string { return s.skipped }
func (s *isoSource) Close() error      { return s.f.Close() }
func (s *isoSource) String() string    { return s.path }
func (s *isoSource) Identity() string {
	return fmt.Sprintf("iso:%s:%d:%d", s.path, s.size, s.mtime)
}

func (s *isoSource) Open(f File) (rc io.ReadCloser, err error) {
	if off, ok := s.extents[f.Path]; ok {
		if off+f.Size > s.size {
			return nil, fmt.Errorf("iso %s: %s lies past the end of the image (bytes %d to %d of %d)", s.path, f.Path, off, off+f.Size, s.size)
		}
		return io.NopCloser(io.NewSectionReader(s.f, off, f.Size)), nil
	}
	err = guard(func() error {
		fh, err := s.fs.OpenFile(f.isoPath, os.O_RDONLY)
		if err != nil {
			return err
		}
		rc = &isoFile{r: fh, left: f.Size}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("iso %s: %w", s.path, err)
	}
	return rc, nil
}

// rawFacts are what go-diskfs v1.7.0 knows of a directory entry but does
// not export: where the file's data starts, and its Rock Ridge name as
// recorded. Name() strips a leading and trailing "." even from a Rock
// Ridge name (".treeinfo" becomes "treeinfo"), and the extent is only
// reachable through OpenFile, which re-reads and re-parses the whole
// directory on every call: 25 ms a file in a 4000-file directory, minutes
// for a DVD's Packages/. Both are read with reflection from the pinned
// version's fields; when they are not there (another version), the
// exported, slower and dot-losing path is used instead.
type rawFacts struct {
	extent    int64 // in sectors
	hasExtent bool
	rrName    string
}

func rawEntry(fi os.FileInfo) (r rawFacts) {
	defer func() { recover() }() // a different layout only loses the shortcut
	v := reflect.ValueOf(fi)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return r
	}
	v = v.Elem()
	if loc := v.FieldByName("location"); loc.IsValid() && loc.CanUint() {
		r.extent, r.hasExtent = int64(loc.Uint()), true
	}
	ext := v.FieldByName("extensions")
	if !ext.IsValid() || ext.Kind() != reflect.Slice {
		return r
	}
	for i := range ext.Len() {
		e := ext.Index(i)
		if e.Kind() == reflect.Interface {
			e = e.Elem()
		}
		if e.Kind() != reflect.Struct || e.Type().Name() != "rockRidgeName" {
			continue
		}
		if n := e.FieldByName("name"); n.IsValid() && n.Kind() == reflect.String {
			r.rrName = n.String()
		}
		if c := e.FieldByName("continued"); c.IsValid() && c.Kind() == reflect.Bool && c.Bool() {
			r.rrName = "" // a name split over entries: leave it to go-diskfs
		}
		break
	}
	return r
}

// isoFile reads one file of the image, catching reader panics and a file
// whose extent runs past the end of the image.
type isoFile struct {
	r    io.ReadCloser
	left int64
}

func (f *isoFile) Read(b []byte) (n int, err error) {
	if f.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > f.left {
		b = b[:f.left]
	}
	err = guard(func() error {
		var rerr error
		n, rerr = f.r.Read(b)
		return rerr
	})
	f.left -= int64(n)
	switch {
	case f.left == 0:
		return n, nil // the next call says io.EOF
	case errors.Is(err, io.EOF), err == nil && n == 0:
		return n, fmt.Errorf("%d bytes short: %w", f.left, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (f *isoFile) Close() error { return f.r.Close() }

// strictBackend reports a short read as an error. go-diskfs's file reader
// treats io.EOF as success and would hand back a partly filled buffer for
// a file whose blocks lie past the end of a damaged image.
type strictBackend struct {
	backend.Storage
	size int64
}

func (b strictBackend) ReadAt(p []byte, off int64) (int, error) {
	n, err := b.Storage.ReadAt(p, off)
	if n < len(p) && (err == nil || errors.Is(err, io.EOF)) {
		err = fmt.Errorf("read of %d bytes at offset %d: %w (the image has %d bytes)", len(p), off, io.ErrUnexpectedEOF, b.size)
	}
	return n, err
}
