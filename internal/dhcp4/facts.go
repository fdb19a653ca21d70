package dhcp4

import (
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
)

// optIPXE is iPXE's encapsulated option space. Its presence marks iPXE even
// when the ROM (Mellanox FlexBoot, some builds) sends no user class.
const optIPXE = 175

// ParseFacts is the one parse of a DHCPv4 request into what the boot
// decision needs; local is the address of the interface it came in on.
// It never fails: whatever is malformed is simply left out.
func ParseFacts(p *dhcpv4.DHCPv4, local netip.Addr) boot.Facts {
	f := boot.Facts{Family: 4, ServerIP: local, Arch: boot.ArchNone}
	if p == nil {
		return f
	}
	if p.HWType == iana.HWTypeEthernet && len(p.ClientHWAddr) == 6 {
		f.MAC = p.ClientHWAddr.String()
	}
	if v := p.Options.Get(dhcpv4.OptionClassIdentifier); len(v) > 0 {
		f.VendorClass = printable(v)
	}
	if v := p.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(v) >= 2 {
		f.Arch = boot.Arch(uint16(v[0])<<8 | uint16(v[1]))
	} else if a, ok := archFromVendorClass(f.VendorClass); ok {
		f.Arch = a
	}
	f.UserClass = userClass(p.Options.Get(dhcpv4.OptionUserClassInformation))
	f.UUID = clientUUID(p.Options.Get(dhcpv4.OptionClientMachineIdentifier))
	if a, ok := addr4(p.GatewayIPAddr); ok {
		f.Relay = a
	}
	if a, ok := addr4(p.ClientIPAddr); ok {
		f.ClientIP = a
	}
	f.Firmware = boot.ClassifyFirmware(f.Arch, f.UserClass, f.VendorClass, p.Options.Has(dhcpv4.GenericOptionCode(optIPXE)))
	return f
}

// addr4 converts a header address, treating 0.0.0.0 and garbage as absent.
func addr4(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	if !a.Is4() || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

// archFromVendorClass reads the architecture from "PXEClient:Arch:00007:..."
// for ROMs that put it only there.
func archFromVendorClass(vc string) (boot.Arch, bool) {
	parts := strings.Split(vc, ":")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "Arch" {
			n, err := strconv.ParseUint(parts[i+1], 10, 16)
			if err == nil && n != uint64(boot.ArchNone) {
				return boot.Arch(n), true
			}
		}
	}
	return 0, false
}

// userClass accepts both encodings seen in the field: RFC 3004's
// length-prefixed list, and a bare string (iPXE sends "iPXE" that way, as
// does dhclient's `send user-class "..."`).
func userClass(v []byte) []string {
	if len(v) == 0 {
		return nil
	}
	var out []string
	for rest := v; len(rest) > 0; {
		n := int(rest[0])
		if n == 0 || n+1 > len(rest) {
			out = nil
			break
		}
		out = append(out, printable(rest[1:1+n]))
		rest = rest[1+n:]
	}
	if out != nil {
		return out
	}
	return []string{printable(v)}
}

// clientUUID decodes option 97 (type 0 + 16-byte GUID). PXE and iPXE send
// the GUID as EFI does, first three fields little-endian; the text form is
// the one dmidecode and iPXE's ${uuid} print, which operators copy into the
// inventory.
func clientUUID(v []byte) string {
	if len(v) != 17 || v[0] != 0 {
		return ""
	}
	g := v[1:]
	allSame := true
	for _, b := range g {
		allSame = allSame && (b == g[0])
	}
	if allSame && (g[0] == 0 || g[0] == 0xff) {
		return "" // "not set" placeholders some firmware sends
	}
	b := []byte{g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]}
	b = append(b, g[8:]...)
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[0:8], h[8:12], h[12:16], h[16:20], h[20:32])
}

// printable keeps vendor strings safe to log and compare: NULs that some
// ROMs pad with are cut, other control bytes dropped.
func printable(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, string(b))
}
