package initrd

import (
	"fmt"
	"io"
	"io/fs"
	"time"
)

// WriteListing prints segments the way `cpio -t` prints an archive, one "# segment" line before
// each segment's names. With long it prints `cpio -tv --numeric-uid-gid` columns, except that
// dates are UTC "2006-01-02 15:04" rather than the locale's, so that output is stable.
func WriteListing(w io.Writer, segs []Segment, long bool) error {
	for _, s := range segs {
		if _, err := fmt.Fprintf(w, "# segment %d: %s, offset %d, %d bytes, %d entries\n",
			s.Index, s.Compression, s.Offset, s.Length, len(s.Entries)); err != nil {
			return err
		}
		for i := range s.Entries {
			if err := writeEntry(w, &s.Entries[i], long); err != nil {
				return err
			}
		}
	}
	return nil
}

func writeEntry(w io.Writer, h *Header, long bool) error {
	if !long {
		_, err := fmt.Fprintln(w, h.Name)
		return err
	}
	size := fmt.Sprintf("%8d", h.Size)
	if h.Mode&fs.ModeDevice != 0 {
		size = fmt.Sprintf("%3d, %3d", h.RdevMajor, h.RdevMinor)
	}
	link := ""
	if h.Link != "" {
		link = " -> " + h.Link
	}
	_, err := fmt.Fprintf(w, "%s %3d %-8d %-8d %s %s %s%s\n", ModeString(h.Mode), h.Nlink, h.UID, h.GID,
		size, time.Unix(h.Mtime, 0).UTC().Format("2006-01-02 15:04"), h.Name, link)
	return err
}

// ModeString formats a mode as ls -l does ("-rwsr-xr-x"), which fs.FileMode.String does not.
func ModeString(m fs.FileMode) string {
	b := []byte("----------")
	switch m.Type() {
	case fs.ModeDir:
		b[0] = 'd'
	case fs.ModeSymlink:
		b[0] = 'l'
	case fs.ModeDevice | fs.ModeCharDevice:
		b[0] = 'c'
	case fs.ModeDevice:
		b[0] = 'b'
	case fs.ModeNamedPipe:
		b[0] = 'p'
	case fs.ModeSocket:
		b[0] = 's'
	}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if m&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(pos int, set bool, on, off byte) {
		if !set {
			return
		}
		if b[pos] == '-' {
			b[pos] = off
		} else {
			b[pos] = on
		}
	}
	special(3, m&fs.ModeSetuid != 0, 's', 'S')
	special(6, m&fs.ModeSetgid != 0, 's', 'S')
	special(9, m&fs.ModeSticky != 0, 't', 'T')
	return string(b)
}
