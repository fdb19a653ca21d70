package bootfiles

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/overlay"
	"github.com/kickstand/kickstand/internal/render"
)

// ErrNotFound is returned for names that do not exist or may not be served.
// Escapes get it too: telling an attacker "forbidden" confirms the file.
var ErrNotFound = fs.ErrNotExist

// File is an open file, real or rendered.
type File interface {
	io.ReadSeeker
	io.ReaderAt
	io.Closer
	Size() int64
	ModTime() time.Time
}

// Kind classifies what was served, for logs and the install timeline.
type Kind string

const (
	KindConfig  Kind = "config"
	KindKernel  Kind = "kernel"
	KindInitrd  Kind = "initrd"
	KindStage2  Kind = "stage2"
	KindRepo    Kind = "repo"
	KindFile    Kind = "file"
	KindLoader  Kind = "loader"
	KindOverlay Kind = "overlay"
	KindUpdates Kind = "updates"
)

// Files resolves names in the shared namespace:
//
//	pxelinux.cfg/*, grub.cfg*     rendered per request by the boot decision
//	distros/<name>/<path>         the distro's tree
//	<path>                        the operator's root directory (loaders etc.)
type Files struct {
	Booter *boot.Booter
	// Chooser takes a menu choice (internal/install).
	Chooser Chooser
	Store   interface {
		Distro(ctx context.Context, name string) (*inventory.Distro, error)
	}
	Config func() *inventory.Config
	// Images builds kickstand's own overlay initrds and updates images.
	Images *overlay.Images

	roots rootCache
}

// Chooser binds a machine to the host it chose from a boot menu and
// answers with that host's plan, when the menu was the machine's to see.
type Chooser interface {
	Choose(ctx context.Context, f boot.Facts, host string) (boot.Plan, error)
}

// Request is one lookup.
type Request struct {
	Name   string
	Client netip.Addr
	Local  netip.Addr // the server address the request arrived on
}

// Open returns the file for a request, or an error wrapping ErrNotFound.
func (f *Files) Open(ctx context.Context, r Request) (File, Kind, error) {
	name, ok := CleanName(r.Name)
	if !ok {
		return nil, "", fmt.Errorf("open %q: %w", r.Name, ErrNotFound)
	}
	if cn, ok := ParseConfigName(name); ok {
		b, err := f.config(ctx, cn, r)
		if err != nil {
			return nil, KindConfig, fmt.Errorf("open %s: %w", name, err)
		}
		return newMemFile(b), KindConfig, nil
	}
	if strings.HasPrefix(name, boot.OverlayDir) && f.Images != nil {
		b, ok, err := f.Images.Open(name)
		switch {
		case err != nil:
			return nil, "", fmt.Errorf("open %s: %w", name, err)
		case ok && strings.Contains(name, "/updates/"):
			return newMemFile(b), KindUpdates, nil
		case ok:
			return newMemFile(b), KindOverlay, nil
		}
	}
	cfg := f.Config()
	if rest, ok := strings.CutPrefix(name, "distros/"); ok {
		dname, fpath, _ := strings.Cut(rest, "/")
		d, err := f.Store.Distro(ctx, dname)
		if err != nil || d.Tree == "" || fpath == "" {
			return nil, "", fmt.Errorf("open %s: %w", name, ErrNotFound)
		}
		file, err := f.roots.openIn(cfg.Abs(d.Tree), fpath)
		if err != nil {
			// Say what was missing (the kernel, say), so the timeline
			// and the diagnosis can name it.
			return nil, classify(d, fpath), fmt.Errorf("open %s: %w", name, err)
		}
		return file, classify(d, fpath), nil
	}
	if cfg.Server.Root != "" {
		if file, err := f.roots.openIn(cfg.Abs(cfg.Server.Root), name); err == nil {
			if IsLoader(name) {
				return file, KindLoader, nil
			}
			return file, KindFile, nil
		}
	}
	if IsLoader(name) {
		var dirs []string
		for _, d := range cfg.Server.Loaders {
			dirs = append(dirs, cfg.Abs(d))
		}
		if file, err := openLoader(name, dirs); err == nil {
			return file, KindLoader, nil
		}
	}
	return nil, "", fmt.Errorf("open %s: %w", name, ErrNotFound)
}

// CleanName normalises a requested name and refuses anything that tries to
// climb out: ".." segments, NUL bytes and backslashes. Leading slashes are
// dropped, as TFTP clients send both "/x" and "x".
func CleanName(name string) (string, bool) {
	if strings.ContainsAny(name, "\x00\\") {
		return "", false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == ".." {
			return "", false
		}
	}
	c := strings.TrimLeft(path.Clean("/"+name), "/")
	return c, c != "" && c != "."
}

// rootCache keeps each served directory open as an os.Root, and small files
// read whole, for a second. Opening the root and the file per request cost
// more than serving a small file (a config, repodata, .treeinfo, which a
// rack of installers all fetch at once); a second bounds how long a file
// or directory replaced under us (a distro imported again) is still
// served as it was.
type rootCache struct {
	mu    sync.Mutex
	m     map[string]cachedRoot
	files map[string]cachedFile
	bytes int
}

type cachedRoot struct {
	root *os.Root
	dir  os.FileInfo // what the root was opened on, to notice a replacement
	at   time.Time
}

type cachedFile struct {
	b   []byte
	mod time.Time
	at  time.Time
}

const (
	cacheTTL = time.Second
	// smallFile is the largest file kept in memory; larger ones are
	// sent from the file (sendfile). maxCached bounds the memory used.
	smallFile = 64 << 10
	maxCached = 64 << 20
)

// root returns an open root for dir. After cacheTTL the directory is
// looked at again; a root is reopened only when the directory was
// replaced (another inode), and the old one closed then: a request still
// reading the replaced tree may fail, which is the moment to.
func (c *rootCache) root(dir string, now time.Time) (*os.Root, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[dir]
	if ok && now.Sub(r.at) < cacheTTL {
		return r.root, nil
	}
	st, err := os.Stat(dir)
	if ok && err == nil && os.SameFile(st, r.dir) {
		r.at = now
		c.m[dir] = r
		return r.root, nil
	}
	if ok {
		r.root.Close()
		delete(c.m, dir)
	}
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]cachedRoot{}
	}
	if len(c.m) >= 256 {
		for k, v := range c.m {
			v.root.Close()
			delete(c.m, k)
		}
	}
	c.m[dir] = cachedRoot{root: root, dir: st, at: now}
	return root, nil
}

func (c *rootCache) cached(key string, now time.Time) (cachedFile, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.files[key]
	return f, ok && now.Sub(f.at) < cacheTTL && !now.Before(f.at)
}

func (c *rootCache) keep(key string, f cachedFile) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.files == nil || c.bytes+len(f.b) > maxCached {
		c.files, c.bytes = map[string]cachedFile{}, 0
	}
	c.bytes += len(f.b) - len(c.files[key].b)
	c.files[key] = f
}

// openIn opens a file beneath dir; os.Root refuses symlinks and paths that
// resolve outside it.
func (c *rootCache) openIn(dir, name string) (File, error) {
	now := time.Now()
	key := dir + "\x00" + name
	if f, ok := c.cached(key, now); ok {
		return &memFile{Reader: bytes.NewReader(f.b), mod: f.mod}, nil
	}
	root, err := c.root(dir, now)
	if err != nil {
		return nil, ErrNotFound
	}
	fh, err := root.Open(name)
	if err != nil {
		return nil, ErrNotFound
	}
	st, err := fh.Stat()
	if err != nil || !st.Mode().IsRegular() {
		fh.Close()
		return nil, ErrNotFound
	}
	if st.Size() > smallFile {
		return &osFile{File: fh, size: st.Size(), mod: st.ModTime()}, nil
	}
	defer fh.Close()
	b := make([]byte, st.Size())
	if _, err := io.ReadFull(fh, b); err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	c.keep(key, cachedFile{b: b, mod: st.ModTime(), at: now})
	return &memFile{Reader: bytes.NewReader(b), mod: st.ModTime()}, nil
}

func classify(d *inventory.Distro, p string) Kind {
	switch {
	case p == d.Kernel:
		return KindKernel
	case containsStr(d.Initrds, p):
		return KindInitrd
	case strings.Contains(p, "LiveOS/") || strings.HasSuffix(p, "install.img"):
		return KindStage2
	}
	return KindRepo
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// config renders a loader config. The machine is who its address says
// (boot.Booter.Identify), whatever file name its loader asks for: a name
// holding a MAC or UUID is the loader's lookup order, not proof. A name
// for a machine kickstand cannot identify is "not found", so the loader
// moves on to the next name, ending at default/grub.cfg (the menu).
func (f *Files) config(ctx context.Context, cn ConfigName, r Request) ([]byte, error) {
	facts := boot.Facts{Firmware: cn.Firmware, Arch: boot.ArchNone, ClientIP: r.Client.Unmap(), ServerIP: r.Local, Family: family(r.Local)}
	if !cn.MatchesClient(r.Client) || (cn.IP.IsValid() && cn.IP != r.Client.WithZone("")) {
		return nil, ErrNotFound
	}
	var p boot.Plan
	var err error
	if cn.Choose != "" && f.Chooser != nil {
		p, err = f.Chooser.Choose(ctx, facts, cn.Choose)
	} else {
		p, err = f.Booter.BootSpec(ctx, facts)
	}
	if err != nil {
		return nil, err
	}
	if p.Action == boot.ActionNone || (!cn.Default && cn.Choose == "" && p.Host == "") {
		return nil, ErrNotFound
	}
	if cn.Firmware == boot.FirmwareGRUB {
		return render.GRUB(p), nil
	}
	return render.PXELINUX(p), nil
}

func family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	if a.IsValid() {
		return 6
	}
	return 4
}

type osFile struct {
	*os.File
	size int64
	mod  time.Time
}

func (f *osFile) Size() int64        { return f.size }
func (f *osFile) ModTime() time.Time { return f.mod }

type memFile struct {
	*bytes.Reader
	mod time.Time
}

func newMemFile(b []byte) *memFile { return &memFile{Reader: bytes.NewReader(b), mod: time.Now()} }

func (m *memFile) Close() error       { return nil }
func (m *memFile) ModTime() time.Time { return m.mod }

// IsNotFound reports whether err means "no such file" to a client.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }
