package boot

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Loader file names by loader and CPU, as shipped by Debian's ipxe, grub,
// shim and pxelinux packages. BIOS has no CPU in its facts.
var loaderFiles = map[string]map[string]string{
	inventory.LoaderIPXE:     {"bios": "undionly.kpxe", "x86_64": "ipxe.efi", "aarch64": "ipxe-arm64.efi", "i686": "ipxe-i386.efi"},
	inventory.LoaderGRUB:     {"x86_64": "grubx64.efi", "aarch64": "grubaa64.efi", "i686": "grubia32.efi"},
	inventory.LoaderPXELINUX: {"bios": "pxelinux.0"},
	inventory.LoaderShim:     {"x86_64": "shimx64.efi", "aarch64": "shimaa64.efi"},
}

// EFIDir is where a distro's Secure Boot pair is served. shim loads GRUB
// from the directory it was itself loaded from (the BOOTP file header over
// v4, the boot URL over v6), so each distro gets a directory of its own and
// one vendor's shim never meets another's GRUB.
func EFIDir(distro string) string { return OverlayDir + "efi/" + distro + "/" }

// ShimGRUB is the GRUB name a shim asks for beside itself, by shim name.
var ShimGRUB = map[string]string{"shimx64.efi": "grubx64.efi", "shimaa64.efi": "grubaa64.efi"}

// LoaderFile is the file a loader is for a CPU ("bios" for BIOS), or "".
func LoaderFile(loader, cpu string) string { return loaderFiles[loader][cpu] }

// bootFile is what DHCP hands out, so that each firmware gets something it
// can run, and iPXE gets a script rather than iPXE again. It also says, in
// the plan's explanation, which chain the machine is on and why.
func bootFile(p *Plan, f Facts, s Server, t *Target) string {
	if p.Action == ActionNone || f.Firmware == FirmwareGRUB || f.Firmware == FirmwarePXELINUX {
		return "" // a loader asking for its config is already booted
	}
	var prof *inventory.Profile
	if t != nil {
		prof = t.Profile
	}
	insist := prof != nil && prof.InsistLoader
	cpu := f.Arch.CPU()
	if f.Firmware == FirmwareBIOS || (cpu == "" && f.Firmware != FirmwareUEFIHTTP) {
		cpu = "bios"
	}
	if f.Firmware == FirmwareIPXE {
		if name := ipxeLoader(p, f, prof, cpu); name != "" {
			return loaderURL(p, f, s, name)
		}
		base := s.URL(f.Family)
		if base == "" {
			return ""
		}
		if prof == nil || p.Loader == inventory.LoaderIPXE {
			p.explain("the machine runs iPXE: it gets kickstand's iPXE script")
		}
		q := url.Values{}
		if f.MAC != "" {
			q.Set("mac", f.MAC)
		}
		if f.Arch != ArchNone {
			q.Set("arch", strconv.Itoa(int(f.Arch)))
		}
		return base + "/boot.ipxe?" + q.Encode()
	}
	loader := p.Loader
	if prof != nil && prof.SecureBoot && loader != inventory.LoaderShim && (cpu == "x86_64" || cpu == "aarch64") {
		loader = inventory.LoaderShim
	}
	switch {
	case loader == inventory.LoaderShim && LoaderFile(loader, cpu) == "":
		// Secure Boot is a UEFI matter: BIOS machines get the default.
		p.explain("profile %s wants Secure Boot (shim), which %s firmware cannot run: handing out the default loader, iPXE", prof.Name, strings.ToUpper(cpu))
		loader = inventory.LoaderIPXE
	case loader == inventory.LoaderShim:
		shim := LoaderFile(loader, cpu)
		dir := EFIDir(t.Distro.Name)
		p.Loader = inventory.LoaderShim
		p.explain("Secure Boot chain (profile %s): %s firmware gets %s%s, which loads the signed GRUB beside it (%s%s), whose config boots %s's signed kernel; shim trusts only its own vendor's GRUB and kernels, so distro %s's pair is served from its own directory",
			prof.Name, cpu, dir, shim, dir, ShimGRUB[shim], t.Distro.Name, t.Distro.Name)
		if f.Firmware == FirmwareUEFIHTTP {
			p.explain("under UEFI HTTP boot shim asks for %s/%s (served as it is, since shim follows no redirects), and Debian 12's GRUB has no network after HTTP boot: PXE is the proven Secure Boot path", dir[:len(dir)-1], "/"+ShimGRUB[shim])
		}
		return loaderURL(p, f, s, dir+shim)
	case loader == inventory.LoaderIPXE && cpu == "aarch64" && !insist:
		// Debian ships no arm64 iPXE, so a default that named one would
		// hand arm64 machines a file nobody has.
		p.explain("arm64 firmware gets GRUB (%s): there is no arm64 iPXE build in Debian; set insist_loader: true on the profile to hand out %s from server.root instead", LoaderFile(inventory.LoaderGRUB, cpu), LoaderFile(inventory.LoaderIPXE, cpu))
		loader = inventory.LoaderGRUB
	}
	name := LoaderFile(loader, cpu)
	if name == "" {
		if insist {
			p.refuse("profile %s insists on loader %s, which has no build for %s firmware (arch %d)", prof.Name, loader, cpu, f.Arch)
			return ""
		}
		// e.g. GRUB for BIOS or PXELINUX for UEFI: iPXE covers both.
		name = LoaderFile(inventory.LoaderIPXE, cpu)
		if name == "" {
			p.explain("no loader for %s firmware (arch %d)", cpu, f.Arch)
			return ""
		}
		p.explain("loader %s has no %s build: handing out iPXE (%s); set insist_loader: true to refuse such machines instead", loader, cpu, name)
		loader = inventory.LoaderIPXE
	}
	p.Loader = loader
	p.explain("%s firmware gets %s (loader %s)", firmwareWords(f, cpu), name, loader)
	return loaderURL(p, f, s, name)
}

// ipxeLoader is the loader a machine already running iPXE (an iPXE NIC ROM,
// or iPXE chained) is handed when its profile insists on another loader,
// or "" for kickstand's iPXE script.
func ipxeLoader(p *Plan, f Facts, prof *inventory.Profile, cpu string) string {
	if prof == nil || p.Action == ActionMenu || p.Loader == inventory.LoaderIPXE {
		return ""
	}
	loader := p.Loader
	want := LoaderFile(loader, cpu)
	if cpu == "bios" && f.Arch == ArchNone {
		// iPXE asking over HTTP does not say its platform: name both.
		var names []string
		for _, c := range []string{"bios", "x86_64"} {
			if n := LoaderFile(loader, c); n != "" {
				names = append(names, n)
			}
		}
		want = strings.Join(names, " or ")
	}
	if want == "" {
		want = "a " + loader + " build for " + cpu
	}
	if loader == inventory.LoaderShim {
		p.explain("the machine already runs iPXE (an iPXE NIC ROM, say), so it gets kickstand's iPXE script: iPXE verifies nothing, so Secure Boot needs the firmware's own PXE or HTTP boot to load %s", LoaderFile(loader, "x86_64"))
		return ""
	}
	if !prof.InsistLoader {
		p.explain("the machine already runs iPXE (an iPXE NIC ROM, say), so it gets kickstand's iPXE script rather than %s (loader %s of profile %s); set insist_loader: true on the profile to hand it %s instead", want, loader, prof.Name, loader)
		return ""
	}
	name := LoaderFile(loader, cpu)
	if name == "" || loader == inventory.LoaderShim {
		// iPXE verifies nothing, so a shim it loaded would not be Secure
		// Boot; and a loader with no build for this platform cannot run.
		p.explain("profile %s insists on loader %s, but a machine already in iPXE (%s) cannot use it: it gets kickstand's iPXE script", prof.Name, loader, cpu)
		return ""
	}
	p.explain("the machine already runs iPXE, and profile %s insists on loader %s: it gets %s rather than kickstand's iPXE script", prof.Name, loader, name)
	return name
}

// loaderURL is a loader's name as the firmware wants it: a bare TFTP path
// over v4 PXE, a URL for UEFI HTTP boot and DHCPv6.
func loaderURL(p *Plan, f Facts, s Server, name string) string {
	switch {
	case f.Firmware == FirmwareUEFIHTTP:
		base := s.URL(f.Family)
		if base == "" {
			return ""
		}
		return base + "/" + name
	case f.Family == 6:
		// EDK2 accepts only tftp://[addr]/file in DHCPv6 option 59.
		a := s.addr(6)
		if !a.IsValid() {
			a = f.ServerIP
		}
		if !a.IsValid() {
			return ""
		}
		return "tftp://[" + a.String() + "]/" + name
	}
	return name
}

func firmwareWords(f Facts, cpu string) string {
	switch {
	case f.Firmware == FirmwareUEFIHTTP:
		return fmt.Sprintf("UEFI HTTP boot %s (arch %d)", cpu, f.Arch)
	case cpu == "bios":
		return "BIOS PXE"
	}
	return fmt.Sprintf("UEFI PXE %s over IPv%d (arch %d)", cpu, f.Family, f.Arch)
}

// chainCase is one kind of firmware a host may have.
type chainCase struct {
	label string
	f     Facts
}

var x86Chains = []chainCase{
	{"BIOS PXE", Facts{Firmware: FirmwareBIOS, Arch: ArchBIOS, Family: 4}},
	{"UEFI PXE x86_64", Facts{Firmware: FirmwareUEFI, Arch: ArchEFIX64, Family: 4}},
	{"UEFI HTTP boot x86_64", Facts{Firmware: FirmwareUEFIHTTP, Arch: ArchHTTPX64, Family: 4}},
	{"iPXE already running (NIC ROM)", Facts{Firmware: FirmwareIPXE, Arch: ArchNone, Family: 4}},
}

var arm64Chains = []chainCase{
	{"UEFI PXE arm64", Facts{Firmware: FirmwareUEFI, Arch: ArchEFIARM64, Family: 4}},
	{"UEFI HTTP boot arm64", Facts{Firmware: FirmwareUEFIHTTP, Arch: ArchHTTPARM64, Family: 4}},
}

// Chains says, for each kind of firmware a machine of the target's CPU may
// have, what DHCP hands it and why: `render --explain` and `kickstand
// doctor` print it, so an operator sees the Secure Boot, arm64 and iPXE-ROM
// choices before a machine boots. It goes through the same bootFile as the
// served answer.
func Chains(t Target, s Server) []string {
	cases := x86Chains
	if inventory.CPUName(t.Distro.Arch) == "aarch64" {
		cases = arm64Chains
	}
	var out []string
	for _, c := range cases {
		p := Plan{Action: ActionInstall, Loader: t.Profile.Loader, Host: t.Record.Name, Firmware: c.f.Firmware}
		bf := bootFile(&p, c.f, s, &t)
		if bf == "" {
			bf = "nothing"
		}
		out = append(out, fmt.Sprintf("%s: %s (%s)", c.label, bf, strings.Join(p.Explain, "; ")))
	}
	return out
}
