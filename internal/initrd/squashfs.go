package initrd

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/squashfs"
)

// SquashEntry is one file of a squashfs image.
type SquashEntry struct {
	Path    string // absolute, "/LiveOS/rootfs.img"
	Mode    fs.FileMode
	Size    int64
	ModTime time.Time
	Link    string
}

// IsSquashfs reports whether b starts with the squashfs superblock magic.
func IsSquashfs(b []byte) bool { return bytes.HasPrefix(b, []byte("hsqs")) }

// ListSquashfs lists a squashfs image (an installer's LiveOS/squashfs.img) without mounting it,
// so it needs neither root nor loop devices, unlike seed 000's `mount -o loop`. The ext4
// LiveOS/rootfs.img inside shows up as a file with its size.
func ListSquashfs(image string) ([]SquashEntry, error) {
	f, err := os.Open(image)
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("squashfs: %w", err)
	}
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err != nil || !IsSquashfs(magic) {
		return nil, fmt.Errorf("squashfs %s: no squashfs superblock", image)
	}
	sq, err := squashfs.Read(file.New(f, true), fi.Size(), 0, 0)
	if err != nil {
		return nil, fmt.Errorf("squashfs %s: %w", image, err)
	}
	var out []SquashEntry
	var walk func(dir string, depth int) error
	walk = func(dir string, depth int) error {
		if depth > 256 {
			return fmt.Errorf("squashfs %s: directories nested deeper than 256 at %s", image, dir)
		}
		infos, err := sq.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("squashfs %s: %w", image, err)
		}
		for _, info := range infos {
			p := path.Join(dir, info.Name())
			e := SquashEntry{Path: p, Mode: info.Mode(), Size: info.Size(), ModTime: info.ModTime()}
			if info.Mode()&fs.ModeSymlink != 0 {
				if st, ok := info.Sys().(squashfs.FileStat); ok {
					e.Link, _ = st.Readlink()
				}
			}
			out = append(out, e)
			if info.IsDir() {
				if err := walk(p, depth+1); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk("/", 0); err != nil {
		return nil, err
	}
	return out, nil
}

// WriteSquashListing prints entries in the long listing format of WriteListing.
func WriteSquashListing(w io.Writer, entries []SquashEntry) error {
	for _, e := range entries {
		link := ""
		if e.Link != "" {
			link = " -> " + e.Link
		}
		if _, err := fmt.Fprintf(w, "%s %12d %s %s%s\n", ModeString(e.Mode), e.Size,
			e.ModTime.UTC().Format("2006-01-02 15:04"), e.Path, link); err != nil {
			return err
		}
	}
	return nil
}
