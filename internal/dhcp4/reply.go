package dhcp4

import (
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/inventory"
)

// subnet is a configured subnet, parsed once per config version.
type subnet struct {
	dhcpengine.Net
	routers, dns, ntp []net.IP
	domain            string
	lease             time.Duration
}

// parseSubnets turns the config into subnets. The config was validated on
// load, so an entry that does not parse is skipped, not fatal.
func parseSubnets(d *inventory.DHCP) []subnet {
	var out []subnet
	for _, c := range d.Subnets {
		n, ok := dhcpengine.ParseNet(4, c.Subnet, c.Pool)
		if !ok {
			continue
		}
		s := subnet{Net: n, domain: c.Domain, lease: time.Duration(c.LeaseTime)}
		if s.lease <= 0 {
			s.lease = time.Hour
		}
		s.routers, s.dns, s.ntp = dhcpengine.IPs(c.Routers, 4), dhcpengine.IPs(c.DNS, 4), dhcpengine.IPs(c.NTP, 4)
		out = append(out, s)
	}
	return out
}

// selectSubnet picks the subnet a client is on: the one holding the relay's
// giaddr when relayed, else one holding an address of the interface.
func selectSubnet(subs []subnet, relay netip.Addr, local []netip.Prefix) *subnet {
	return dhcpengine.SelectSubnet(subs, func(s *subnet) netip.Prefix { return s.Prefix }, relay.IsValid(), relay, local)
}

// newReply starts a reply to req. Option 82 goes back verbatim (RFC 3046:
// the relay needs it to find the port) and the client identifier is echoed
// (RFC 6842).
func newReply(req *dhcpv4.DHCPv4, mt dhcpv4.MessageType, serverID netip.Addr) *dhcpv4.DHCPv4 {
	zero := net.IPv4zero.To4()
	r := &dhcpv4.DHCPv4{
		OpCode:        dhcpv4.OpcodeBootReply,
		HWType:        req.HWType,
		TransactionID: req.TransactionID,
		ClientHWAddr:  req.ClientHWAddr,
		Flags:         req.Flags,
		ClientIPAddr:  zero,
		YourIPAddr:    zero,
		ServerIPAddr:  zero,
		GatewayIPAddr: zero,
		Options:       dhcpv4.Options{},
	}
	if gi, ok := addr4(req.GatewayIPAddr); ok {
		r.GatewayIPAddr = gi.AsSlice()
	}
	r.UpdateOption(dhcpv4.OptMessageType(mt))
	r.UpdateOption(dhcpv4.OptServerIdentifier(serverID.AsSlice()))
	for _, code := range []dhcpv4.OptionCode{dhcpv4.OptionRelayAgentInformation, dhcpv4.OptionClientIdentifier} {
		if v := req.Options.Get(code); v != nil {
			r.Options[code.Code()] = append([]byte(nil), v...)
		}
	}
	return r
}

// addNetwork adds the subnet's options and, for a lease (lease > 0), the
// lease times with the usual T1 = 1/2 and T2 = 7/8.
func addNetwork(r *dhcpv4.DHCPv4, s *subnet, hostname string, lease time.Duration) {
	r.UpdateOption(dhcpv4.OptSubnetMask(net.CIDRMask(s.Prefix.Bits(), 32)))
	if len(s.routers) > 0 {
		r.UpdateOption(dhcpv4.OptRouter(s.routers...))
	}
	if len(s.dns) > 0 {
		r.UpdateOption(dhcpv4.OptDNS(s.dns...))
	}
	if s.domain != "" {
		r.UpdateOption(dhcpv4.OptDomainName(s.domain))
	}
	if len(s.ntp) > 0 {
		r.UpdateOption(dhcpv4.OptNTPServers(s.ntp...))
	}
	if hostname != "" {
		r.UpdateOption(dhcpv4.OptHostName(hostname))
	}
	if lease > 0 {
		r.UpdateOption(dhcpv4.OptIPAddressLeaseTime(lease.Truncate(time.Second)))
		r.UpdateOption(dhcpv4.OptRenewTimeValue((lease / 2).Truncate(time.Second)))
		r.UpdateOption(dhcpv4.OptRebindingTimeValue((lease * 7 / 8).Truncate(time.Second)))
	}
}

// pxeDiscoveryControl is PXE vendor option 43: sub-option 6 (discovery
// control) = 8, "a boot file name is in this offer: download it, no boot
// server discovery or menu", then end.
var pxeDiscoveryControl = []byte{6, 1, 8, 255}

// addBoot adds what the Plan says the client boots. It decides nothing:
// an empty BootFile or ActionNone means no boot options at all. It reports
// whether it added any.
func addBoot(r *dhcpv4.DHCPv4, req *dhcpv4.DHCPv4, f boot.Facts, p boot.Plan, local netip.Addr, proxy bool) bool {
	if p.Action == boot.ActionNone || p.BootFile == "" {
		return false
	}
	bf := p.BootFile
	r.ServerIPAddr = local.AsSlice() // siaddr, "next-server"
	if len(bf) < 128 {
		r.BootFileName = bf
	}
	r.UpdateOption(dhcpv4.OptBootFileName(bf))
	if !strings.Contains(bf, "://") {
		r.ServerHostName = local.String()
		r.UpdateOption(dhcpv4.OptTFTPServerName(local.String()))
	}
	// The firmware only accepts an offer that echoes its class.
	switch {
	case f.Firmware == boot.FirmwareUEFIHTTP:
		r.UpdateOption(dhcpv4.OptClassIdentifier("HTTPClient"))
	case strings.HasPrefix(f.VendorClass, "PXEClient"):
		r.UpdateOption(dhcpv4.OptClassIdentifier("PXEClient"))
	}
	if proxy {
		r.UpdateOption(dhcpv4.OptGeneric(dhcpv4.OptionVendorSpecificInformation, pxeDiscoveryControl))
		// PXE 2.1: a proxy reply carries the client's UUID back.
		if v := req.Options.Get(dhcpv4.OptionClientMachineIdentifier); v != nil {
			r.Options[dhcpv4.OptionClientMachineIdentifier.Code()] = append([]byte(nil), v...)
		}
	}
	return true
}

// Ports.
const (
	serverPort = 67
	clientPort = 68
	pxePort    = 4011
)

// replyAddr is where a reply to req goes: a relay gets it on its server
// port (smee#382: broadcasting there reaches nobody), a client that has an
// address gets it unicast, anyone else by broadcast.
func replyAddr(req *dhcpv4.DHCPv4, nak bool) netip.AddrPort {
	if gi, ok := addr4(req.GatewayIPAddr); ok {
		return netip.AddrPortFrom(gi, serverPort)
	}
	if ci, ok := addr4(req.ClientIPAddr); ok && !nak {
		return netip.AddrPortFrom(ci, clientPort)
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{255, 255, 255, 255}), clientPort)
}

// isPXE reports whether the client is network-boot firmware by its own
// account (option 60), the only clients a proxyDHCP server may answer.
func isPXE(f boot.Facts) bool {
	return strings.HasPrefix(f.VendorClass, "PXEClient") || strings.HasPrefix(f.VendorClass, "HTTPClient")
}
