package distro

import (
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"syscall"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Importer copies install trees into kickstand's data directory and
// registers them.
type Importer struct {
	// DataDir is kickstand's data directory; trees go to DataDir/distros/NAME.
	DataDir string
	// Store registers the imported distro and its profile: the install
	// lifecycle (install.Service), which records it on the timeline.
	Store Registry
	// Config is the inventory file in force; names it declares are refused
	// before anything is copied. May be nil.
	Config   *inventory.Config
	Progress *Progress // nil: no progress output
	Log      *slog.Logger
	// AfterFile, when set, runs after each file is durably staged and
	// journaled. An error from it stops the import as an interruption
	// would; tests use it to simulate a crash partway.
	AfterFile func(path string) error
}

// Registry registers a live distro and its default profile, both or
// neither.
type Registry interface {
	RegisterDistro(ctx context.Context, d inventory.Distro, p *inventory.Profile) error
}

// RegistryFunc is a function as a Registry.
type RegistryFunc func(ctx context.Context, d inventory.Distro, p *inventory.Profile) error

func (f RegistryFunc) RegisterDistro(ctx context.Context, d inventory.Distro, p *inventory.Profile) error {
	return f(ctx, d, p)
}

// Request is one import.
type Request struct {
	Name    string // distro (and default profile) name
	Source  string // ISO image file or directory tree
	Release string // overrides the release derived from .treeinfo
	Arch    string // chooses the [images-ARCH] section
	// Link hard-links files of a directory source instead of copying them
	// (falling back to a copy across filesystems).
	Link bool
}

// Result says what an import did.
type Result struct {
	Distro  inventory.Distro
	Profile inventory.Profile
	Layout  *Layout
	Files   int   // files in the tree
	Bytes   int64 // bytes in the tree
	Copied  int   // files copied in this run
	Linked  int   // files hard-linked in this run
	Resumed int   // files kept from an interrupted run
	// Verified lists the files whose .treeinfo checksum was checked.
	Verified []string
	Warnings []string
}

// InputError is an import refused because of its input: a bad name, a tree
// without a kernel, an unreadable ISO, a checksum mismatch. Nothing is
// registered and no staging is kept, since rerunning cannot fix it.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

func badInput(format string, a ...any) error { return &InputError{Err: fmt.Errorf(format, a...)} }

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

// Import imports one tree. The tree is staged in DataDir/distros/.staging-NAME
// with a journal beside it, renamed into place only when complete and
// verified, and registered only after that, so that an interrupted import
// leaves either nothing served or a whole tree; rerunning the same request
// resumes where it stopped.
func (im *Importer) Import(ctx context.Context, req Request) (*Result, error) {
	res, err := im.run(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("distro import %s: %w", req.Name, err)
	}
	return res, nil
}

func (im *Importer) run(ctx context.Context, req Request) (*Result, error) {
	log := im.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !nameRe.MatchString(req.Name) {
		return nil, badInput("bad name %q: use letters, digits, '.', '_' and '-', starting with a letter or digit", req.Name)
	}
	if err := im.checkDeclared(req.Name); err != nil {
		return nil, err
	}
	dataDir, err := filepath.Abs(im.DataDir)
	if err != nil {
		return nil, err
	}
	distros := filepath.Join(dataDir, "distros")
	final := filepath.Join(distros, req.Name)
	staging := filepath.Join(distros, ".staging-"+req.Name)
	jpath := staging + ".json"

	src, err := openSource(ctx, req.Source)
	if err != nil {
		return nil, inputUnlessCanceled(err)
	}
	defer src.Close()
	files := src.Files()
	res := &Result{Files: len(files), Warnings: slices.Clone(src.Skipped())}
	for _, f := range files {
		res.Bytes += f.Size
	}
	l, err := planLayout(src, files, req.Arch)
	if err != nil {
		return nil, err
	}
	res.Layout = l
	res.Warnings = append(res.Warnings, l.Warnings...)
	release, err := chooseRelease(req, l)
	if err != nil {
		return nil, err
	}
	if _, dir := src.(*dirSource); req.Link && !dir {
		return nil, badInput("--link needs a directory tree; %s is an ISO image", req.Source)
	}

	hdr := journalRecord{Name: req.Name, Source: src.Identity(), Link: req.Link}
	if _, err := os.Stat(final); err == nil && !journalPlaced(jpath, hdr) {
		return nil, badInput("%s already exists (imported before?): remove it to import again under this name", final)
	}
	if err := os.MkdirAll(distros, 0o755); err != nil {
		return nil, err
	}
	j, err := openJournal(jpath, hdr)
	if err != nil {
		return nil, err
	}
	defer j.close()
	if _, err := os.Stat(final); j.placed && err != nil {
		return nil, fmt.Errorf("journal %s says the tree was moved to %s, which is missing: remove the journal and rerun", jpath, final)
	}

	if !j.placed {
		err := im.stage(ctx, src, files, l, staging, req, j, res)
		var ie *InputError
		if errors.As(err, &ie) {
			// Bad data in the source: staging it again cannot help.
			j.remove()
			os.RemoveAll(staging)
			return nil, err
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("interrupted after %d of %d files; rerun the same command to resume: %w", res.Copied+res.Linked+res.Resumed, len(files), err)
			}
			return nil, fmt.Errorf("%w (staging kept in %s; rerun the same command to resume)", err, staging)
		}
		if err := place(staging, final, distros); err != nil {
			return nil, err
		}
		if err := j.markPlaced(); err != nil {
			return nil, err
		}
		log.Info("distro tree in place", "distro", req.Name, "tree", final)
	} else {
		res.Resumed = len(files)
	}

	d := inventory.Distro{
		Name: req.Name, Release: release, Arch: l.Arch, Tree: final,
		Kernel: l.Kernel, Initrds: l.Initrds, Stage2: stage2Dir(l),
		Shim: l.Shim, GRUB: l.GRUB,
	}
	p := inventory.Profile{Name: req.Name, Distro: req.Name}
	if err := im.Store.RegisterDistro(ctx, d, &p); err != nil {
		return nil, fmt.Errorf("the tree is in place in %s but was not registered; rerun the same command to register it: %w", final, err)
	}
	if err := j.remove(); err != nil {
		log.Warn("distro import: journal left behind", "err", err)
	}
	res.Distro, res.Profile = d, p
	return res, nil
}

// stage2Dir is the Distro.Stage2 for a layout. A tree with a repository
// leaves it empty: inst.repo= then points at the tree, and the installer
// finds its stage2 through the .treeinfo or the standard paths. A tree
// with a stage2 but no repository (a boot or netinst image) points
// inst.stage2= at the tree root, and the kickstart supplies the packages.
func stage2Dir(l *Layout) string {
	if l.Stage2 != "" && len(l.Repos) == 0 {
		return "."
	}
	return ""
}

func (im *Importer) checkDeclared(name string) error {
	if im.Config == nil {
		return nil
	}
	for _, d := range im.Config.Distros {
		if d.Name == name {
			return badInput("distro %s is declared in %s: choose another --name or remove it from the file", name, im.Config.Path)
		}
	}
	for _, p := range im.Config.Profiles {
		if p.Name == name {
			return badInput("profile %s is declared in %s, and the import's default profile takes the distro's name: choose another --name", name, im.Config.Path)
		}
	}
	return nil
}

func planLayout(src source, files []File, arch string) (*Layout, error) {
	has := func(p string) bool { _, ok := lookup(files, p); return ok }
	var ti *Treeinfo
	if f, ok := lookup(files, ".treeinfo"); ok {
		b, err := readSmall(src, f, MaxTreeinfoSize)
		if err != nil {
			return nil, badInput("%s: %w", src, err)
		}
		ti, err = ParseTreeinfo(b)
		if err != nil {
			return nil, badInput("%s: .treeinfo: %w", src, err)
		}
	}
	l, err := ResolveLayout(ti, has, arch)
	if err != nil {
		if _, iso := src.(*isoSource); iso && ti == nil {
			err = fmt.Errorf("%w (an ISO without Rock Ridge names shows ISO9660 8.3 names; kickstand needs Rock Ridge)", err)
		}
		return nil, badInput("%s: %w", src, err)
	}
	return l, nil
}

func chooseRelease(req Request, l *Layout) (string, error) {
	rel, from := req.Release, "--release"
	if rel == "" {
		rel, from = l.Release, ".treeinfo"
		// CentOS 7 trees say only "7"; a name such as centos7.2 that
		// agrees on family and major adds the minor release.
		tr, err1 := inventory.ParseRelease(rel)
		nr, err2 := inventory.ParseRelease(req.Name)
		if err1 == nil && err2 == nil && tr.Minor < 0 && nr.Minor >= 0 && tr.Family == nr.Family && tr.Major == nr.Major {
			rel, from = req.Name, "the name"
		}
	}
	if rel == "" {
		// A name like centos7.2 says the release; anything else must be told.
		if _, err := inventory.ParseRelease(req.Name); err != nil {
			return "", badInput("cannot tell the release (no usable .treeinfo family and version, and the name %q is not one): pass --release", req.Name)
		}
		rel, from = req.Name, "the name"
	}
	if _, err := inventory.ParseRelease(rel); err != nil {
		return "", badInput("release from %s: %w", from, err)
	}
	return rel, nil
}

// stage copies (or links) every file not already staged, verifying
// checksums, and makes the staging directory durable.
func (im *Importer) stage(ctx context.Context, src source, files []File, l *Layout, staging string, req Request, j *journal, res *Result) error {
	if j.fresh {
		if err := os.RemoveAll(staging); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(staging, 0o755); err != nil {
		return err
	}
	for p := range l.Checksums {
		if _, ok := lookup(files, p); !ok {
			res.Warnings = append(res.Warnings, fmt.Sprintf(".treeinfo has a checksum for %s, which is not in the tree", p))
		}
	}
	prog := im.Progress
	prog.Start(res.Bytes, len(files))
	defer prog.Finish()
	linkFailed := false
	buf := make([]byte, copyChunk)
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return err
		}
		dst := filepath.Join(staging, filepath.FromSlash(f.Path))
		if r, ok := j.done[f.Path]; ok && r.Size == f.Size && r.MTime == f.ModTime.UnixNano() && sizeIs(dst, f.Size) {
			prog.Skip(f.Size)
			res.Resumed++
			if r.Verified != "" {
				res.Verified = append(res.Verified, f.Path)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		// Never write through an old entry: with --link it would be the
		// source file itself.
		if err := os.Remove(dst); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		sum, hasSum := l.Checksums[f.Path]
		h := newHash(sum.Algorithm)
		if hasSum && h == nil {
			res.Warnings = append(res.Warnings, fmt.Sprintf("%s: cannot check a %s checksum", f.Path, sum.Algorithm))
		}
		linked := false
		if req.Link && f.local != "" && !linkFailed {
			err := os.Link(f.local, dst)
			switch {
			case err == nil:
				linked = true
			case errors.Is(err, syscall.EXDEV) || errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EMLINK):
				linkFailed = true
				res.Warnings = append(res.Warnings, fmt.Sprintf("cannot hard-link into %s (%v): copying instead", staging, err))
			default:
				return fmt.Errorf("link %s: %w", f.Path, err)
			}
		}
		var err error
		if linked {
			res.Linked++
			prog.Add(f.Size)
			if h != nil {
				err = hashFile(ctx, dst, h, buf)
			}
		} else {
			res.Copied++
			err = copyFile(ctx, src, f, dst, h, prog, buf)
		}
		if err != nil {
			return err
		}
		rec := journalRecord{Kind: "file", Path: f.Path, Size: f.Size, MTime: f.ModTime.UnixNano()}
		if h != nil {
			if got := h.Sum(nil); !slices.Equal(got, sum.Sum) {
				return badInput("%s: %s: checksum mismatch: .treeinfo says %s, the file has %s:%x", src, f.Path, sum, sum.Algorithm, got)
			}
			rec.Verified = sum.Algorithm
			res.Verified = append(res.Verified, f.Path)
		}
		if err := j.append(rec); err != nil {
			return err
		}
		prog.FileDone()
		if im.AfterFile != nil {
			if err := im.AfterFile(f.Path); err != nil {
				return err
			}
		}
	}
	return syncDirs(staging)
}

// copyFile copies one file into dst and syncs it, hashing what was read.
func copyFile(ctx context.Context, src source, f File, dst string, h hash.Hash, prog *Progress, buf []byte) error {
	r, err := src.Open(f)
	if err != nil {
		return &InputError{Err: fmt.Errorf("%s: %s: %w", src, f.Path, err)}
	}
	defer r.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	w := io.Writer(out)
	if h != nil {
		w = io.MultiWriter(out, h)
	}
	n, err := copyCtx(ctx, w, r, prog, buf)
	var ie *InputError
	if errors.As(err, &ie) {
		err = &InputError{Err: fmt.Errorf("%s: %s: %w", src, f.Path, ie.Err)}
	}
	if err == nil && n != f.Size {
		err = &InputError{Err: fmt.Errorf("%s: %s: read %d bytes, the tree lists %d", src, f.Path, n, f.Size)}
	}
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyChunk is the unit of copying: large enough for full-speed reads,
// small enough that an interrupt during a multi-gigabyte squashfs stops
// promptly.
const copyChunk = 1 << 20

// copyCtx copies in chunks of len(buf), checking ctx between them. Read
// errors are the source's fault and so InputErrors; write errors are not.
func copyCtx(ctx context.Context, w io.Writer, r io.Reader, prog *Progress, buf []byte) (int64, error) {
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		m, rerr := r.Read(buf)
		if m > 0 {
			if _, err := w.Write(buf[:m]); err != nil {
				return n, err
			}
			n += int64(m)
			prog.Add(int64(m))
		}
		if rerr == io.EOF {
			return n, nil
		}
		if rerr != nil {
			return n, &InputError{Err: rerr}
		}
	}
}

func hashFile(ctx context.Context, p string, h hash.Hash, buf []byte) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = copyCtx(ctx, h, f, nil, buf)
	return err
}

func newHash(algo string) hash.Hash {
	switch algo {
	case "md5":
		return md5.New()
	case "sha1":
		return sha1.New()
	case "sha224":
		return sha256.New224()
	case "sha256":
		return sha256.New()
	case "sha384":
		return sha512.New384()
	case "sha512":
		return sha512.New()
	}
	return nil
}

func sizeIs(p string, size int64) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Size() == size
}

// syncDirs fsyncs every directory of the staged tree, so the names of the
// synced files survive a crash too.
func syncDirs(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		return syncDir(p)
	})
}

func syncDir(p string) error {
	d, err := os.Open(p)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", p, err)
	}
	return nil
}

// place renames the complete staging directory to its final name: one
// rename, so the tree appears whole or not at all.
func place(staging, final, parent string) error {
	if err := os.Rename(staging, final); err != nil {
		return fmt.Errorf("move %s into place: %w", staging, err)
	}
	return syncDir(parent)
}

func inputUnlessCanceled(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &InputError{Err: err}
}
