package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"strings"
	"syscall"
)

// Request is what an Opener is asked to open.
type Request struct {
	// Path is the cleaned file name: relative, slash-separated, with no "."
	// or ".." elements and no leading slash (a leading slash means the TFTP
	// root, as tftpd-hpa -s and dnsmasq treat it; GRUB sends such names).
	// Backslashes, which Windows-era clients send, are turned into slashes.
	Path string
	// RawName is the file name exactly as the client sent it.
	RawName string
	// Client is the address and port the request came from.
	Client netip.AddrPort
	// Local is the server address the request arrived on; invalid if unknown.
	Local netip.Addr
	// Mode is "octet" or "netascii".
	Mode string
	// Options are the request's options, keys in lower case.
	Options map[string]string
}

// File is what an Opener returns. ReadAt lets rendered files be shared by
// concurrent transfers without copying.
type File interface {
	io.ReaderAt
	io.Closer
	// Size is the length in bytes, or -1 if unknown; tsize is only offered
	// when it is known. iPXE is much slower without a size, so report it.
	Size() int64
}

// Opener decides what a request gets. The server itself serves nothing: the
// caller chooses the files (a directory, rendered configs, or both).
//
// Errors choose the TFTP error the client sees: an *Error (or one wrapping
// it, such as ErrNotFound, ErrAccess, ErrIllegalOp, ErrOptionRefused) gives
// its code and message; fs.ErrNotExist gives "file not found"; fs.ErrPermission
// gives "access violation"; errors.ErrUnsupported gives "illegal operation";
// anything else gives code 0 with a generic message.
type Opener interface {
	Open(ctx context.Context, req Request) (File, error)
}

// OpenerFunc adapts a function to Opener.
type OpenerFunc func(ctx context.Context, req Request) (File, error)

// Open calls f.
func (f OpenerFunc) Open(ctx context.Context, req Request) (File, error) { return f(ctx, req) }

// cleanPath turns a client's file name into a Request.Path. Names that would
// leave the root are refused rather than silently re-rooted, so a client that
// probes for ../ gets an error instead of some other file.
func cleanPath(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", ErrAccess
	}
	name = strings.ReplaceAll(name, `\`, "/")
	var parts []string
	for _, p := range strings.Split(name, "/") {
		switch p {
		case "", ".":
		case "..":
			return "", &Error{Code: ErrCodeAccess, Message: "path escapes the TFTP root"}
		default:
			parts = append(parts, p)
		}
	}
	if len(parts) == 0 {
		return "", ErrNotFound
	}
	return strings.Join(parts, "/"), nil
}

// DirOpener serves the regular files under a root directory. It uses os.Root,
// so symlinks that resolve outside the root are refused by the kernel-facing
// lookup itself, not by string checks that a race could defeat.
type DirOpener struct {
	root *os.Root
}

// NewDirOpener opens dir as the TFTP root. Close it when done.
func NewDirOpener(dir string) (*DirOpener, error) {
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("tftp root %s: %w", dir, err)
	}
	return &DirOpener{root: r}, nil
}

// Close releases the root directory.
func (d *DirOpener) Close() error { return d.root.Close() }

// Open opens req.Path under the root. Only regular files are served.
func (d *DirOpener) Open(_ context.Context, req Request) (File, error) {
	if req.Path == "" || strings.HasPrefix(req.Path, "/") {
		return nil, fmt.Errorf("tftp %q: not a relative path: %w", req.Path, ErrAccess)
	}
	f, err := d.root.Open(req.Path)
	if err != nil {
		return nil, fmt.Errorf("tftp %s: %w", req.Path, dirError(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("tftp %s: %w", req.Path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("tftp %s: not a regular file: %w", req.Path, ErrNotFound)
	}
	return &osFile{File: f, size: st.Size()}, nil
}

// dirError keeps the fs sentinels and turns what os.Root refuses (escaping
// symlinks, symlink loops) into an access violation. System failures such as
// running out of descriptors stay server errors.
func dirError(err error) error {
	var errno syscall.Errno
	switch {
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission):
		return err
	case errors.Is(err, syscall.ENOTDIR) || errors.Is(err, syscall.ENAMETOOLONG):
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case errors.As(err, &errno) && errno != syscall.ELOOP:
		return err
	}
	return fmt.Errorf("%w: %w", ErrAccess, err)
}

type osFile struct {
	*os.File
	size int64
}

func (f *osFile) Size() int64 { return f.size }

// BytesFile serves b, for files rendered in memory. b must not change while
// transfers may read it.
func BytesFile(b []byte) File { return bytesFile{bytes.NewReader(b)} }

type bytesFile struct{ *bytes.Reader }

func (bytesFile) Close() error { return nil }
