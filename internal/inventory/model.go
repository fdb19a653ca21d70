// Package inventory holds kickstand's object model (distros, profiles, hosts,
// the menu) and loads it from the declarative YAML file.
//
// Validation happens here, before anything is stored or served, so that a bad
// edit is rejected with the file, line and field at fault and the running
// server keeps its previous state.
package inventory

import (
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// Netboot states a host can be in.
const (
	StateInstall = "install" // next PXE boot installs the OS
	StateLocal   = "local"   // next PXE boot chains to the local disk
	StateMenu    = "menu"    // next PXE boot shows the menu
)

// Platforms a host can run on; the kickstart rewriter and the VM installer
// key disk names and command lines on it.
const (
	PlatformBaremetal = "baremetal"
	PlatformKVM       = "kvm"
	PlatformXen       = "xen"
)

// Loaders a profile may prefer.
const (
	LoaderIPXE     = "ipxe"
	LoaderGRUB     = "grub"
	LoaderPXELINUX = "pxelinux"
	// LoaderShim is Secure Boot's chain: the distro's signed shim, which
	// loads the signed GRUB beside it, whose config boots the signed
	// kernel. Machines without UEFI get the default loader instead.
	LoaderShim = "shim"
)

// Distro is an installable tree: kernel, initrds, stage2 and repo.
type Distro struct {
	Name    string   `yaml:"name" json:"name"`
	Release string   `yaml:"release" json:"release"`
	Arch    string   `yaml:"arch,omitempty" json:"arch,omitempty"`
	Tree    string   `yaml:"tree,omitempty" json:"tree,omitempty"` // directory served at /distros/<name>/
	Kernel  string   `yaml:"kernel" json:"kernel"`                 // relative to Tree
	Initrds []string `yaml:"initrd" json:"initrd"`                 // relative to Tree
	// Stage2 is a URL, or a path relative to Tree, of the directory holding
	// LiveOS/squashfs.img. Empty means "use the repo" (inst.repo=).
	Stage2 string `yaml:"stage2,omitempty" json:"stage2,omitempty"`
	// Repo is the package source. Empty means the tree itself.
	Repo string `yaml:"repo,omitempty" json:"repo,omitempty"`
	// Shim and GRUB are the distro's own Secure Boot pair, tree-relative
	// (EFI/BOOT/BOOTX64.EFI and EFI/BOOT/grubx64.efi on EL media). A shim
	// trusts only its vendor's GRUB and kernels, so each distro's pair is
	// served under its own directory. Empty: Debian's shim-signed and
	// grub-efi-*-signed builds.
	Shim string `yaml:"shim,omitempty" json:"shim,omitempty"`
	GRUB string `yaml:"grub,omitempty" json:"grub,omitempty"`
}

// Profile is how a class of hosts installs: which distro, which kickstart
// template, which extra kernel arguments and which loader.
type Profile struct {
	Name       string `yaml:"name" json:"name"`
	Distro     string `yaml:"distro" json:"distro"`
	Kickstart  string `yaml:"kickstart,omitempty" json:"kickstart,omitempty"` // template name
	KernelArgs string `yaml:"kernel_args,omitempty" json:"kernel_args,omitempty"`
	Loader     string `yaml:"loader,omitempty" json:"loader,omitempty"` // ipxe (default), grub, pxelinux, shim
	// SecureBoot hands UEFI machines the distro's shim (loader shim);
	// BIOS machines keep the profile's loader.
	SecureBoot bool `yaml:"secure_boot,omitempty" json:"secure_boot,omitempty"`
	// InsistLoader makes the profile's loader the only answer: a machine
	// already running iPXE (an iPXE NIC ROM) is handed the loader rather
	// than kickstand's iPXE script, and firmware the loader has no build
	// for is refused instead of falling back to iPXE.
	InsistLoader bool `yaml:"insist_loader,omitempty" json:"insist_loader,omitempty"`
	// Platform, when set, overrides the hosts' platform for kickstart
	// rewrites (disk names): a profile for Xen guests says xen once.
	Platform string `yaml:"platform,omitempty" json:"platform,omitempty"`
	// Fixes turns kickstand's seed-000 IPv6 workarounds "off" for this
	// profile; the default, "auto", applies each where the release and
	// network need it.
	Fixes string `yaml:"fixes,omitempty" json:"fixes,omitempty"`
	// Stage2 overrides the distro's stage2 for this profile: a URL, or a
	// directory inside the distro's tree holding LiveOS/ (seed 000 kept
	// patched images as /7.x/7.2r5/LiveOS, one directory per revision).
	Stage2 string `yaml:"stage2,omitempty" json:"stage2,omitempty"`
	// KickstartBy opts into serving /ks (no token) to a host in install
	// state found by its X-RHN-Provisioning-MAC header (inst.ks.sendmac),
	// "mac", or by its static address, "ip". Off by default: both are
	// weaker than the build token (headers and addresses can be forged).
	KickstartBy []string `yaml:"kickstart_by,omitempty" json:"kickstart_by,omitempty"`
	// Lint says what happens to a rendered kickstart that fails lint for
	// the host's release: "error" (the default) refuses to serve it (503,
	// and the errors on the host's timeline), so an installer never runs
	// a kickstart Anaconda would reject; "warn" serves it, logged.
	Lint string `yaml:"lint,omitempty" json:"lint,omitempty"`
	// Vars are template variables every host of the profile gets; a
	// host's own vars win. A fleet's root password hash or SSH keys
	// (the built-in kickstart's rootpw, ssh_keys and user) are set once
	// here.
	Vars map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
}

// Host is one machine kickstand knows by MAC, UUID or address.
type Host struct {
	Name        string            `yaml:"name" json:"name"`
	MACs        []string          `yaml:"macs,omitempty" json:"macs,omitempty"`
	UUID        string            `yaml:"uuid,omitempty" json:"uuid,omitempty"`
	IPv4        string            `yaml:"ipv4,omitempty" json:"ipv4,omitempty"` // address/prefix
	Gateway4    string            `yaml:"gateway4,omitempty" json:"gateway4,omitempty"`
	IPv6        string            `yaml:"ipv6,omitempty" json:"ipv6,omitempty"` // address/prefix
	Gateway6    string            `yaml:"gateway6,omitempty" json:"gateway6,omitempty"`
	Nameservers []string          `yaml:"nameservers,omitempty" json:"nameservers,omitempty"`
	NTP         []string          `yaml:"ntp,omitempty" json:"ntp,omitempty"`
	Timezone    string            `yaml:"timezone,omitempty" json:"timezone,omitempty"`
	Interface   string            `yaml:"interface,omitempty" json:"interface,omitempty"`
	Platform    string            `yaml:"platform,omitempty" json:"platform,omitempty"`
	Profile     string            `yaml:"profile" json:"profile"`
	Netboot     string            `yaml:"netboot,omitempty" json:"netboot,omitempty"`
	Vars        map[string]string `yaml:"vars,omitempty" json:"vars,omitempty"`
}

// Menu is what unknown machines, and hosts in the menu state, are shown.
type Menu struct {
	// Unknown is what a machine kickstand does not know gets: "menu" or
	// "ignore" (no DHCP boot options, no config).
	Unknown string `yaml:"unknown,omitempty" json:"unknown,omitempty"`
	Title   string `yaml:"title,omitempty" json:"title,omitempty"`
	Timeout int    `yaml:"timeout,omitempty" json:"timeout,omitempty"` // seconds before local boot
	// Hosts lists the hosts offered; empty means every host in install state.
	Hosts []string `yaml:"hosts,omitempty" json:"hosts,omitempty"`
}

// Equal reports whether two hosts are declared alike. A reload syncs to
// the store only the hosts that are not.
func (h *Host) Equal(o *Host) bool {
	return h.Name == o.Name && slices.Equal(h.MACs, o.MACs) && h.UUID == o.UUID &&
		h.IPv4 == o.IPv4 && h.Gateway4 == o.Gateway4 && h.IPv6 == o.IPv6 && h.Gateway6 == o.Gateway6 &&
		slices.Equal(h.Nameservers, o.Nameservers) && slices.Equal(h.NTP, o.NTP) &&
		h.Timezone == o.Timezone && h.Interface == o.Interface && h.Platform == o.Platform &&
		h.Profile == o.Profile && h.Netboot == o.Netboot && maps.Equal(h.Vars, o.Vars)
}

// Addr4 returns the host's IPv4 address and prefix, if it has one.
func (h *Host) Addr4() (netip.Prefix, bool) { return parsePrefix(h.IPv4) }

// Addr6 returns the host's IPv6 address and prefix, if it has one.
func (h *Host) Addr6() (netip.Prefix, bool) { return parsePrefix(h.IPv6) }

func parsePrefix(s string) (netip.Prefix, bool) {
	if s == "" {
		return netip.Prefix{}, false
	}
	p, err := netip.ParsePrefix(s)
	return p, err == nil
}

// NormalMAC lower-cases and colon-separates a MAC so that every lookup uses
// one spelling. It returns "" for anything that is not a 6-byte MAC.
func NormalMAC(s string) string {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return ""
	}
	return hw.String()
}

// NormalUUID lower-cases a SMBIOS UUID; firmware and configs differ in case.
func NormalUUID(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// Origins of stored objects: who owns them (see the README's ownership rule).
const (
	OriginFile = "file" // declared in the YAML file; the file wins
	OriginLive = "live" // created through the CLI or API; the store wins
)

// HostRecord is a host as the store keeps it: its definition plus the live
// netboot state and build token, which change without editing any file.
type HostRecord struct {
	Host
	State        string    `json:"state"`
	Token        string    `json:"-"` // a secret: never logged or listed
	TokenExpires time.Time `json:"token_expires,omitzero"`
	Origin       string    `json:"origin"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// TokenValid reports whether the host has a build token usable at now.
func (r *HostRecord) TokenValid(now time.Time) bool {
	return r.Token != "" && now.Before(r.TokenExpires)
}

// CPUName is a CPU family as distros spell it (x86_64, aarch64, i686), from
// any common spelling (amd64, x64, arm64, i386...), or "" when unknown. Both
// the inventory's check of distro.arch and the boot decision's refusal of a
// machine of another CPU use it, so they cannot disagree.
func CPUName(s string) string {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "x86_64", "amd64", "x64", "x86-64":
		return "x86_64"
	case "aarch64", "arm64":
		return "aarch64"
	case "i686", "i386", "i586", "x86", "ia32":
		return "i686"
	case "armv7", "armv7hl", "arm":
		return "armv7"
	case "ppc64le":
		return "ppc64le"
	case "s390x":
		return "s390x"
	}
	return ""
}
