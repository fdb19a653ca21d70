package bootfiles

import (
	"os"
	"path/filepath"
)

// Loader is a network boot program kickstand hands out, and where Debian's
// packages put it. Operators can override any of them by putting a file of
// the same name in server.root or a server.loaders directory.
type Loader struct {
	Name    string   // the name clients ask for
	Paths   []string // where Debian installs it, in order of preference
	Package string   // the Debian package that ships it
	For     string   // what it is for, for `kickstand doctor`
}

// Loaders is the table of known loaders.
var Loaders = []Loader{
	{"undionly.kpxe", []string{"/usr/lib/ipxe/undionly.kpxe"}, "ipxe", "BIOS PXE -> iPXE"},
	{"ipxe.efi", []string{"/usr/lib/ipxe/ipxe.efi"}, "ipxe", "UEFI x86-64 -> iPXE"},
	{"snponly.efi", []string{"/usr/lib/ipxe/snponly.efi"}, "ipxe", "UEFI x86-64 -> iPXE using the firmware's NIC driver"},
	{"pxelinux.0", []string{"/usr/lib/PXELINUX/pxelinux.0"}, "pxelinux", "BIOS PXE -> PXELINUX (TFTP)"},
	{"lpxelinux.0", []string{"/usr/lib/PXELINUX/lpxelinux.0"}, "pxelinux", "BIOS PXE -> PXELINUX with HTTP"},
	{"ldlinux.c32", []string{"/usr/lib/syslinux/modules/bios/ldlinux.c32"}, "syslinux-common", "needed by pxelinux.0"},
	{"menu.c32", []string{"/usr/lib/syslinux/modules/bios/menu.c32"}, "syslinux-common", "PXELINUX menus"},
	{"libutil.c32", []string{"/usr/lib/syslinux/modules/bios/libutil.c32"}, "syslinux-common", "needed by menu.c32"},
	{"grubx64.efi", []string{"/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed", "/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi"}, "grub-efi-amd64-bin", "UEFI x86-64 -> GRUB (with IPv6 net_bootp6); signed when grub-efi-amd64-signed is installed"},
	{"shimx64.efi", []string{"/usr/lib/shim/shimx64.efi.signed"}, "shim-signed", "UEFI Secure Boot x86-64 -> signed GRUB (distros without their own shim)"},
	{"grubaa64.efi", []string{"/usr/lib/grub/arm64-efi-signed/grubnetaa64.efi.signed", "/usr/lib/grub/arm64-efi/monolithic/grubnetaa64.efi"}, "grub-efi-arm64-bin", "UEFI arm64 -> GRUB (the default for arm64: Debian has no arm64 iPXE)"},
	{"shimaa64.efi", []string{"/usr/lib/shim/shimaa64.efi.signed"}, "shim-signed:arm64", "UEFI Secure Boot arm64 -> signed GRUB (distros without their own shim)"},
}

// FindLoader returns the path of a loader in the extra directories, then in
// Debian's standard places, or "" when it is not installed.
func FindLoader(name string, dirs []string) string {
	for _, d := range dirs {
		p := filepath.Join(d, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	for _, l := range Loaders {
		if l.Name != name {
			continue
		}
		for _, p := range l.Paths {
			if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
				return p
			}
		}
	}
	return ""
}

// IsLoader reports whether name is one of the loaders kickstand hands out,
// at the top level or in a distro's Secure Boot directory.
func IsLoader(name string) bool {
	if _, file, ok := efiName(name); ok {
		name = file
	}
	for _, l := range Loaders {
		if l.Name == name {
			return true
		}
	}
	return false
}

// openLoader opens a loader found by FindLoader. It is only reached for
// names in the table, so it cannot be used to read arbitrary files.
func openLoader(name string, dirs []string) (File, error) {
	p := FindLoader(name, dirs)
	if p == "" {
		return nil, ErrNotFound
	}
	fh, err := os.Open(p)
	if err != nil {
		return nil, ErrNotFound
	}
	st, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, ErrNotFound
	}
	return &osFile{File: fh, size: st.Size(), mod: st.ModTime()}, nil
}
