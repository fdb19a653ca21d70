package bootfiles

import (
	"context"
	"debug/pe"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
)

// efiName splits kickstand/efi/<distro>/<file>, the per-distro Secure
// Boot directory (boot.EFIDir), into its parts.
func efiName(name string) (distro, file string, ok bool) {
	rest, ok := strings.CutPrefix(name, boot.OverlayDir+"efi/")
	if !ok {
		return "", "", false
	}
	distro, file, ok = strings.Cut(rest, "/")
	return distro, file, ok && distro != "" && file != "" && !strings.Contains(file, "/")
}

// efiSource says where a file of a distro's Secure Boot directory comes
// from: the distro's own shim or GRUB (tree-relative), or, when the distro
// names none, Debian's signed build of the same name (loader). Any other
// name is not there: shim probes for revocations_*.efi and
// shim_certificate_0.efi before loading GRUB, and each probe should get its
// not-found at once, without a store or disk lookup.
func efiSource(d *inventory.Distro, file string) (treePath, loader string, ok bool) {
	for shim, grub := range boot.ShimGRUB {
		if file != shim && file != grub {
			continue
		}
		// A distro's own pair is for its own CPU; the other CPU's names
		// come from Debian's packages.
		cpu := inventory.CPUName(d.Arch)
		if cpu == "" {
			cpu = "x86_64"
		}
		own := boot.LoaderFile(inventory.LoaderShim, cpu) == shim
		switch {
		case file == shim && own:
			return d.Shim, shim, true
		case file == grub && own:
			return d.GRUB, grub, true
		}
		return "", file, true
	}
	return "", "", false
}

// openEFI serves kickstand/efi/<distro>/<file>.
func (f *Files) openEFI(ctx context.Context, name string, dirs []string, abs func(string) string) (File, Kind, error) {
	dname, file, ok := efiName(name)
	if !ok {
		return nil, "", fmt.Errorf("open %s: %w", name, ErrNotFound)
	}
	if _, _, known := efiSource(&inventory.Distro{}, file); !known {
		return nil, "", fmt.Errorf("open %s: %w", name, ErrNotFound)
	}
	d, err := f.Store.Distro(ctx, dname)
	if err != nil {
		return nil, "", fmt.Errorf("open %s: %w", name, ErrNotFound)
	}
	rel, loader, _ := efiSource(d, file)
	if rel != "" {
		if d.Tree == "" {
			return nil, KindLoader, fmt.Errorf("open %s: distro %s has no tree: %w", name, d.Name, ErrNotFound)
		}
		tf, err := f.roots.openIn(abs(d.Tree), rel)
		if err != nil {
			return nil, KindLoader, fmt.Errorf("open %s (distro %s's %s): %w", name, d.Name, rel, err)
		}
		return tf, KindLoader, nil
	}
	lf, err := openLoader(loader, dirs)
	if err != nil {
		return nil, KindLoader, fmt.Errorf("open %s (%s, from Debian's packages): %w", name, loader, err)
	}
	return lf, KindLoader, nil
}

// SecureBootFile is a file a distro's Secure Boot chain serves.
type SecureBootFile struct {
	What   string // "shim", "GRUB" or "kernel"
	Path   string // on disk; "" when missing
	Signed bool
	Err    error // missing, or not a PE image
}

// CheckSecureBoot lists the shim, GRUB and kernel that a distro's Secure
// Boot chain serves and whether each carries a signature, for `kickstand
// doctor`: an unsigned one stops the chain (the firmware refuses the shim,
// shim refuses GRUB, GRUB refuses the kernel) with nothing in the timeline
// but the last file fetched.
func CheckSecureBoot(cfg *inventory.Config, d *inventory.Distro) []SecureBootFile {
	cpu := inventory.CPUName(d.Arch)
	if cpu == "" {
		cpu = "x86_64"
	}
	shim := boot.LoaderFile(inventory.LoaderShim, cpu)
	var out []SecureBootFile
	for _, c := range []struct{ what, name, rel string }{
		{"shim", shim, d.Shim}, {"GRUB", boot.ShimGRUB[shim], d.GRUB}, {"kernel", "", d.Kernel},
	} {
		f := SecureBootFile{What: c.what}
		switch {
		case c.rel != "":
			f.Path = filepath.Join(cfg.Abs(d.Tree), c.rel)
		case c.name != "":
			f.Path = FindLoader(c.name, loaderDirs(cfg))
		}
		if f.Path == "" {
			f.Err = fmt.Errorf("%s not found (apt-get install %s, or set the distro's %s:)", c.name, packageOf(c.name), strings.ToLower(c.what))
		} else {
			f.Signed, f.Err = Signed(f.Path)
		}
		out = append(out, f)
	}
	return out
}

func packageOf(name string) string {
	for _, l := range Loaders {
		if l.Name == name {
			return l.Package
		}
	}
	return "?"
}

// Signed reports whether an EFI image (a loader, or a kernel with its EFI
// stub) carries an Authenticode signature: its PE certificate table is not
// empty. Who signed it is for the firmware and shim to judge.
func Signed(path string) (bool, error) {
	f, err := pe.Open(path)
	if err != nil {
		return false, fmt.Errorf("%s: not an EFI (PE) image, so it cannot be verified: %w", path, err)
	}
	defer f.Close()
	var dirs []pe.DataDirectory
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		dirs = h.DataDirectory[:h.NumberOfRvaAndSizes]
	case *pe.OptionalHeader32:
		dirs = h.DataDirectory[:h.NumberOfRvaAndSizes]
	}
	if len(dirs) <= pe.IMAGE_DIRECTORY_ENTRY_SECURITY {
		return false, nil
	}
	return dirs[pe.IMAGE_DIRECTORY_ENTRY_SECURITY].Size > 0, nil
}
