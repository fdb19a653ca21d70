package dhcp6

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
)

// maxHops bounds relay nesting. RFC 3315's HOP_COUNT_LIMIT is 32 (RFC 8415
// lowered it to 8); a deeper chain is not a real network.
const maxHops = 32

// unwrap returns the client's message inside p and the relays it came
// through, outermost first.
func unwrap(p dhcpv6.DHCPv6) (*dhcpv6.Message, []*dhcpv6.RelayMessage, error) {
	var relays []*dhcpv6.RelayMessage
	for {
		switch m := p.(type) {
		case *dhcpv6.Message:
			if m == nil {
				return nil, nil, errors.New("no message")
			}
			return m, relays, nil
		case *dhcpv6.RelayMessage:
			if m == nil || m.MessageType != dhcpv6.MessageTypeRelayForward {
				return nil, nil, errors.New("not a relay-forward")
			}
			if len(relays) == maxHops {
				return nil, nil, fmt.Errorf("more than %d relays", maxHops)
			}
			relays = append(relays, m)
			p = m.Options.RelayMessage()
		default:
			return nil, nil, errors.New("relay-forward without a message")
		}
	}
}

// ParseFacts is the one parse of a DHCPv6 packet (a client message or a
// relay-forward around one) into what the boot decision needs; local is
// the server address of the interface it came in on. It never fails:
// whatever is malformed is left out.
func ParseFacts(p dhcpv6.DHCPv6, local netip.Addr) boot.Facts {
	return parseFacts(p, local, netip.Addr{})
}

// parseFacts is ParseFacts knowing the packet's source address, whose
// EUI-64 interface identifier is the last place a client's MAC can be
// found for a client on the link.
//
// The MAC is what reservations and the boot decision key on, since an
// inventory lists MACs and DHCPv6 identifies clients by DUID. In order of
// trust: relay option 79 (RFC 6939, the link-layer address the relay saw,
// from the relay nearest the client); the DUID, when it is DUID-LL or
// DUID-LLT over Ethernet (it may name another NIC of the same machine,
// which is still the same host); the EUI-64 link-local address (OVMF uses
// one, with a DUID-UUID).
func parseFacts(p dhcpv6.DHCPv6, local, src netip.Addr) boot.Facts {
	f := boot.Facts{Family: 6, ServerIP: local, Arch: boot.ArchNone}
	if p == nil {
		return f
	}
	m, relays, err := unwrap(p)
	if err != nil {
		return f
	}
	peer := src
	if n := len(relays); n > 0 {
		inner := relays[n-1]
		if a, ok := addr6(inner.LinkAddr); ok && !a.IsLinkLocalUnicast() {
			f.Relay = a
		}
		peer, _ = addr6(inner.PeerAddr)
		for i := n - 1; i >= 0 && f.MAC == ""; i-- {
			if ht, hw := relays[i].Options.ClientLinkLayerAddress(); ht == iana.HWTypeEthernet {
				f.MAC = ethernet(hw)
			}
		}
	}
	if d := m.Options.ClientID(); d != nil {
		f.DUID = d.ToBytes()
		if f.MAC == "" {
			f.MAC = duidMAC(d)
		}
		if u, ok := d.(*dhcpv6.DUIDUUID); ok {
			f.UUID = dhcpengine.EFIGUID(u.UUID[:])
		}
	}
	if f.MAC == "" {
		f.MAC = eui64MAC(peer)
	}
	if vcs := m.Options.VendorClasses(); len(vcs) > 0 && len(vcs[0].Data) > 0 {
		f.VendorClass = dhcpengine.Printable(vcs[0].Data[0])
	}
	if archs := m.Options.ArchTypes(); len(archs) > 0 {
		f.Arch = boot.Arch(archs[0])
	} else if a, ok := dhcpengine.ArchFromVendorClass(f.VendorClass); ok {
		f.Arch = a
	}
	for _, uc := range m.Options.UserClasses() {
		f.UserClass = append(f.UserClass, dhcpengine.Printable(uc))
	}
	f.Firmware = boot.ClassifyFirmware(f.Arch, f.UserClass, f.VendorClass, false)
	return f
}

// addr6 converts a header address, treating :: and garbage as absent.
func addr6(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || !a.Is6() || a.Is4In6() || a.IsUnspecified() {
		return netip.Addr{}, false
	}
	return a, true
}

func ethernet(hw net.HardwareAddr) string {
	if len(hw) != 6 {
		return ""
	}
	return hw.String()
}

// duidMAC is the Ethernet address inside a DUID-LL or DUID-LLT.
func duidMAC(d dhcpv6.DUID) string {
	switch d := d.(type) {
	case *dhcpv6.DUIDLL:
		if d.HWType == iana.HWTypeEthernet {
			return ethernet(d.LinkLayerAddr)
		}
	case *dhcpv6.DUIDLLT:
		if d.HWType == iana.HWTypeEthernet {
			return ethernet(d.LinkLayerAddr)
		}
	}
	return ""
}

// eui64MAC recovers the MAC from a link-local address built by modified
// EUI-64 (xx:xx:xx:ff:fe:xx:xx:xx with the universal/local bit flipped).
// Privacy or stable-random addresses have no ff:fe in the middle and give
// nothing.
func eui64MAC(a netip.Addr) string {
	if !a.IsLinkLocalUnicast() || !a.Is6() {
		return ""
	}
	b := a.As16()
	if b[11] != 0xff || b[12] != 0xfe {
		return ""
	}
	return net.HardwareAddr{b[8] ^ 0x02, b[9], b[10], b[13], b[14], b[15]}.String()
}
