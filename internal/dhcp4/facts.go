package dhcp4

import (
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
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
		f.VendorClass = dhcpengine.Printable(v)
	}
	if v := p.Options.Get(dhcpv4.OptionClientSystemArchitectureType); len(v) >= 2 {
		f.Arch = boot.Arch(uint16(v[0])<<8 | uint16(v[1]))
	} else if a, ok := dhcpengine.ArchFromVendorClass(f.VendorClass); ok {
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
		out = append(out, dhcpengine.Printable(rest[1:1+n]))
		rest = rest[1+n:]
	}
	if out != nil {
		return out
	}
	return []string{dhcpengine.Printable(v)}
}

// clientUUID decodes option 97 (type 0 + 16-byte GUID, as EFI stores it).
func clientUUID(v []byte) string {
	if len(v) != 17 || v[0] != 0 {
		return ""
	}
	return dhcpengine.EFIGUID(v[1:])
}
