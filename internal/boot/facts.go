package boot

import (
	"net/netip"
	"strings"
)

// Firmware is the kind of client asking. It decides which loader or script a
// machine gets; getting it wrong is the "UEFI/arch mix-up" class of bug.
type Firmware string

const (
	FirmwareUnknown  Firmware = ""
	FirmwareBIOS     Firmware = "bios"      // legacy PXE ROM
	FirmwareUEFI     Firmware = "uefi"      // UEFI PXE (TFTP)
	FirmwareUEFIHTTP Firmware = "uefi-http" // UEFI HTTP boot: wants a URL
	FirmwareIPXE     Firmware = "ipxe"      // iPXE already running: wants a script
	FirmwareGRUB     Firmware = "grub"      // GRUB asking for grub.cfg-*
	FirmwarePXELINUX Firmware = "pxelinux"  // PXELINUX asking for pxelinux.cfg/*
)

// Arch is the RFC 4578 client system architecture (DHCPv4 option 93, DHCPv6
// option 61).
type Arch uint16

const (
	ArchBIOS      Arch = 0
	ArchEFIIA32   Arch = 6
	ArchEFIX64    Arch = 7
	ArchEFIBC     Arch = 9 // EFI byte code; x86-64 firmware sends it too
	ArchEFIARM32  Arch = 10
	ArchEFIARM64  Arch = 11
	ArchHTTPIA32  Arch = 15
	ArchHTTPX64   Arch = 16
	ArchHTTPARM64 Arch = 19
	ArchNone      Arch = 0xffff // the client sent no architecture
)

// CPU returns the machine's CPU family as distros spell it, or "" when the
// firmware does not say (BIOS could be i686 or x86_64).
func (a Arch) CPU() string {
	switch a {
	case ArchEFIX64, ArchEFIBC, ArchHTTPX64:
		return "x86_64"
	case ArchEFIARM64, ArchHTTPARM64:
		return "aarch64"
	case ArchEFIIA32, ArchHTTPIA32:
		return "i686"
	case ArchEFIARM32:
		return "armv7"
	}
	return ""
}

// IsHTTP reports whether the architecture code is one of UEFI HTTP boot's.
func (a Arch) IsHTTP() bool { return a == ArchHTTPIA32 || a == ArchHTTPX64 || a == ArchHTTPARM64 }

// Facts is everything known about a boot request, parsed once from whatever
// packet or request carried it. The decision uses nothing else. MAC, UUID
// and DUID come only from DHCP packets; HTTP and TFTP requests are
// identified by their address (Booter.Identify).
type Facts struct {
	MAC         string // normalised, lower-case, colon-separated
	UUID        string // SMBIOS UUID, lower-case
	Arch        Arch
	Firmware    Firmware
	Family      int        // 4 or 6: the network the request came over
	ClientIP    netip.Addr // the client's address, if known
	ServerIP    netip.Addr // the local address the request arrived on
	UserClass   []string   // DHCP option 77 / DHCPv6 option 15
	VendorClass string     // DHCP option 60 / DHCPv6 option 16
	Relay       netip.Addr // giaddr or the DHCPv6 relay link address
	DUID        []byte
	// ClaimedMAC is a MAC the client named itself (iPXE's ?mac=). It is
	// not identity: it is only reported, in explanations and for
	// discovering unknown machines.
	ClaimedMAC string
}

// ClassifyFirmware works out the firmware from what DHCP tells us. iPXE is
// checked first so that an iPXE client is never handed iPXE again (the
// classic chainload loop); option 175 catches ROMs that omit the user class.
func ClassifyFirmware(arch Arch, userClass []string, vendorClass string, hasIPXEOption bool) Firmware {
	for _, uc := range userClass {
		if uc == "iPXE" || uc == "kickstand" {
			return FirmwareIPXE
		}
	}
	if hasIPXEOption {
		return FirmwareIPXE
	}
	if strings.HasPrefix(vendorClass, "HTTPClient") || arch.IsHTTP() {
		return FirmwareUEFIHTTP
	}
	switch arch {
	case ArchBIOS:
		return FirmwareBIOS
	case ArchEFIIA32, ArchEFIX64, ArchEFIBC, ArchEFIARM32, ArchEFIARM64:
		return FirmwareUEFI
	}
	if strings.HasPrefix(vendorClass, "PXEClient") {
		return FirmwareBIOS
	}
	return FirmwareUnknown
}
