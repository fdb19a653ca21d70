// Package render turns a boot plan into the bytes each loader reads: iPXE
// scripts, GRUB configs and PXELINUX configs, and renders kickstarts from
// templates. Everything is rendered per request from the store; nothing is
// written to disk, so there is no "sync" step to forget or to wait for.
package render

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	"github.com/kickstand/kickstand/internal/boot"
)

// IPXE renders the iPXE script for a plan. base is the HTTP URL the script
// itself was fetched from, used for kernel/initrd URLs.
func IPXE(p boot.Plan) []byte {
	var b bytes.Buffer
	b.WriteString("#!ipxe\n")
	comment(&b, "# ", p)
	switch p.Action {
	case boot.ActionInstall:
		fmt.Fprintf(&b, "echo kickstand: installing %s (%s)\n", p.Host, p.Release)
		ipxeKernel(&b, p.BootURL, p.Kernel, p.Initrds, p.Cmdline)
		b.WriteString("boot || goto failed\n:failed\necho kickstand: boot failed, falling back to the local disk\nsleep 10\n")
		ipxeLocal(&b)
	case boot.ActionLocal:
		fmt.Fprintf(&b, "echo kickstand: %s boots from the local disk\n", p.Host)
		ipxeLocal(&b)
	case boot.ActionMenu:
		fmt.Fprintf(&b, "menu %s\n", ipxeQuote(p.MenuTitle))
		for i, e := range p.Menu {
			fmt.Fprintf(&b, "item e%d %s\n", i, ipxeQuote(e.Label))
		}
		b.WriteString("item local Boot from the local disk\n")
		fmt.Fprintf(&b, "choose --default local --timeout %d target && goto ${target} || goto local\n", p.MenuTimeout*1000)
		// Choosing asks kickstand again, which binds this machine to
		// the host and only then answers with its install.
		for i, e := range p.Menu {
			fmt.Fprintf(&b, ":e%d\nchain --autofree %s/boot.ipxe?host=%s || goto local\n", i, p.BootURL, url.QueryEscape(e.Host))
		}
		b.WriteString(":local\n")
		ipxeLocal(&b)
	case boot.ActionDiscover:
		ipxeDiscover(&b, p.BootURL)
	default:
		b.WriteString("echo kickstand: nothing to boot for this machine\nsleep 5\nexit 1\n")
	}
	return b.Bytes()
}

func ipxeKernel(b *bytes.Buffer, base, kernel string, initrds []string, cmdline string) {
	// The 2019 iPXE EFI build needs initrd=<name> on the command line to
	// hand an initrd to the kernel's EFI stub; naming each image keeps
	// two initrds with the same basename apart.
	var names []string
	for i := range initrds {
		names = append(names, fmt.Sprintf("initrd=i%d", i))
	}
	fmt.Fprintf(b, "kernel %s %s\n", urlFor(base, kernel), strings.TrimSpace(strings.Join(names, " ")+" "+cmdline))
	for i, rd := range initrds {
		fmt.Fprintf(b, "initrd --name i%d %s\n", i, urlFor(base, rd))
	}
}

func ipxeLocal(b *bytes.Buffer) {
	// sanboot boots the first disk on BIOS; on UEFI it fails and exit hands
	// control back to the firmware's boot order.
	b.WriteString("sanboot --no-describe --drive 0x80 || exit\n")
}

func ipxeQuote(s string) string { return strings.NewReplacer("\n", " ", "$", "").Replace(s) }

// urlFor makes a server path absolute for loaders that fetch over HTTP.
func urlFor(base, p string) string {
	if strings.Contains(p, "://") {
		return p
	}
	return base + "/" + strings.TrimPrefix(p, "/")
}

// slashPath makes a server path absolute for loaders that resolve paths
// against the server they booted from (GRUB's $root, PXELINUX's prefix).
func slashPath(p string) string {
	if strings.Contains(p, "://") {
		return p
	}
	return "/" + strings.TrimPrefix(p, "/")
}

// GRUB renders a GRUB config. It uses linux/initrd, never linuxefi: GRUB
// 2.06+ dropped the *efi variants (Cobbler #4087).
func GRUB(p boot.Plan) []byte {
	var b bytes.Buffer
	comment(&b, "# ", p)
	switch p.Action {
	case boot.ActionInstall:
		b.WriteString("set default=0\nset timeout=0\n")
		grubEntry(&b, "Install "+p.Host, p.Kernel, p.Initrds, p.Cmdline)
	case boot.ActionLocal:
		b.WriteString("set default=0\nset timeout=0\n")
		grubLocal(&b)
	case boot.ActionMenu:
		fmt.Fprintf(&b, "set default=%d\nset timeout=%d\n", len(p.Menu), p.MenuTimeout)
		for _, e := range p.Menu {
			fmt.Fprintf(&b, "menuentry %s {\n  configfile %s\n}\n", grubQuote(e.Label), slashPath(boot.ChoosePath(boot.FirmwareGRUB, e.Host)))
		}
		grubLocal(&b)
	case boot.ActionDiscover:
		// GRUB can hand the machine to iPXE only as an EFI application.
		b.WriteString("if [ \"$grub_platform\" = \"efi\" ]; then\n  echo 'kickstand: unknown machine, chaining into iPXE to report it'\n  chainloader /" + boot.LoaderFile("ipxe", "x86_64") + "\n  boot\nfi\nset default=0\nset timeout=5\n")
		grubLocal(&b)
	default:
		b.WriteString("echo 'kickstand: nothing to boot for this machine'\nsleep 5\nexit\n")
	}
	return b.Bytes()
}

func grubEntry(b *bytes.Buffer, label, kernel string, initrds []string, cmdline string) {
	fmt.Fprintf(b, "menuentry %s {\n", grubQuote(label))
	fmt.Fprintf(b, "  echo %s\n", grubQuote("kickstand: loading "+kernel))
	fmt.Fprintf(b, "  linux %s %s\n", slashPath(kernel), grubArgs(cmdline))
	var rds []string
	for _, rd := range initrds {
		rds = append(rds, slashPath(rd))
	}
	fmt.Fprintf(b, "  initrd %s\n}\n", strings.Join(rds, " "))
}

// grubLocal chains to the installed OS: on UEFI the first loader found among
// the usual ESP paths, else back to the firmware; on BIOS the first disk.
func grubLocal(b *bytes.Buffer) {
	b.WriteString(`menuentry 'Boot from the local disk' {
  if [ "$grub_platform" = "efi" ]; then
    for f in /EFI/redhat/shimx64.efi /EFI/centos/shimx64.efi /EFI/rocky/shimx64.efi /EFI/almalinux/shimx64.efi /EFI/fedora/shimx64.efi /EFI/BOOT/BOOTX64.EFI /EFI/BOOT/BOOTAA64.EFI; do
      if search --no-floppy --file --set=root $f; then
        chainloader $f
        boot
      fi
    done
    exit
  else
    set root=(hd0)
    chainloader +1
    boot
  fi
}
`)
}

func grubQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// grubArgs quotes words GRUB's shell-like parser would otherwise interpret.
func grubArgs(cmdline string) string {
	w := strings.Fields(cmdline)
	for i, x := range w {
		if strings.ContainsAny(x, "$;&|<>'\"{}") {
			w[i] = grubQuote(x)
		}
	}
	return strings.Join(w, " ")
}

// PXELINUX renders a pxelinux.cfg file.
func PXELINUX(p boot.Plan) []byte {
	var b bytes.Buffer
	comment(&b, "# ", p)
	switch p.Action {
	case boot.ActionInstall:
		b.WriteString("DEFAULT install\nPROMPT 0\nTIMEOUT 0\n")
		pxelinuxEntry(&b, "install", "Install "+p.Host, p.Kernel, p.Initrds, p.Cmdline)
	case boot.ActionLocal:
		b.WriteString("DEFAULT local\nPROMPT 0\nTIMEOUT 0\nLABEL local\n  LOCALBOOT 0\n")
	case boot.ActionMenu:
		fmt.Fprintf(&b, "UI menu.c32\nDEFAULT local\nPROMPT 1\nTIMEOUT %d\nMENU TITLE %s\n", p.MenuTimeout*10, p.MenuTitle)
		for i, e := range p.Menu {
			fmt.Fprintf(&b, "LABEL e%d\n  MENU LABEL %s\n  CONFIG %s\n", i, e.Label, slashPath(boot.ChoosePath(boot.FirmwarePXELINUX, e.Host)))
		}
		b.WriteString("LABEL local\n  MENU LABEL Boot from the local disk\n  LOCALBOOT 0\n")
	case boot.ActionDiscover:
		// PXE forces the image type: undionly.kpxe is a PXE program,
		// though its name does not end in .0.
		b.WriteString("SAY kickstand: unknown machine, chaining into iPXE to report it\nDEFAULT ipxe\nPROMPT 0\nTIMEOUT 0\nLABEL ipxe\n  PXE /" + boot.LoaderFile("ipxe", "bios") + "\n")
	default:
		b.WriteString("SAY kickstand: nothing to boot for this machine\nDEFAULT local\nLABEL local\n  LOCALBOOT 0\n")
	}
	return b.Bytes()
}

func pxelinuxEntry(b *bytes.Buffer, label, title, kernel string, initrds []string, cmdline string) {
	var rds []string
	for _, rd := range initrds {
		rds = append(rds, slashPath(rd))
	}
	fmt.Fprintf(b, "LABEL %s\n  MENU LABEL %s\n  KERNEL %s\n  APPEND initrd=%s %s\n  IPAPPEND 2\n",
		label, title, slashPath(kernel), strings.Join(rds, ","), cmdline)
}

// comment writes the plan's explanation at the top of a config, so an
// operator reading a served file sees why it says what it says.
func comment(b *bytes.Buffer, prefix string, p boot.Plan) {
	fmt.Fprintf(b, "%skickstand: action=%s host=%s loader=%s\n", prefix, p.Action, p.Host, p.Loader)
	for _, e := range p.Explain {
		fmt.Fprintf(b, "%s%s\n", prefix, strings.ReplaceAll(e, "\n", " "))
	}
}
