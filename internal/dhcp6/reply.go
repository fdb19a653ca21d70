package dhcp6

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/insomniacslk/dhcp/rfc1035label"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/inventory"
)

// subnet is a configured subnet, parsed once per config version.
type subnet struct {
	dhcpengine.Net
	dns              []net.IP
	search           []string
	preferred, valid time.Duration
	bootParams       []string
}

// parseSubnets turns the config into subnets. The config was validated on
// load, so an entry that does not parse is skipped, not fatal.
func parseSubnets(d *inventory.DHCP6) []subnet {
	var out []subnet
	for _, c := range d.Subnets {
		if n, ok := dhcpengine.ParseNet(6, c.Prefix, c.Pool); ok {
			out = append(out, newSubnet(n, c))
		}
	}
	return out
}

// newSubnet is c's settings, lifetimes defaulted: an hour preferred,
// twice that valid.
func newSubnet(n dhcpengine.Net, c inventory.Subnet6) subnet {
	s := subnet{Net: n, search: c.DomainSearch, bootParams: c.BootParams, dns: dhcpengine.IPs(c.DNS, 6),
		preferred: time.Duration(c.PreferredLifetime), valid: time.Duration(c.ValidLifetime)}
	if s.preferred <= 0 {
		s.preferred = time.Hour
	}
	if s.valid < s.preferred {
		s.valid = 2 * s.preferred
	}
	return s
}

// selectSubnet picks the client's subnet: the one holding the link-address
// of the relay nearest the client when relayed, else one holding an
// address of the interface the packet came in on.
func selectSubnet(subs []subnet, relayed bool, relayLink netip.Addr, local []netip.Prefix) *subnet {
	return dhcpengine.SelectSubnet(subs, func(s *subnet) netip.Prefix { return s.Prefix }, relayed, relayLink, local)
}

// newReply starts an Advertise or Reply to req: transaction id, server id,
// and the client id echoed.
func newReply(req *dhcpv6.Message, mt dhcpv6.MessageType, serverID dhcpv6.DUID) *dhcpv6.Message {
	r := &dhcpv6.Message{MessageType: mt, TransactionID: req.TransactionID}
	if cid := req.Options.ClientID(); cid != nil {
		r.AddOption(dhcpv6.OptClientID(cid))
	}
	r.AddOption(dhcpv6.OptServerID(serverID))
	return r
}

// T1 and T2 as fractions of the preferred lifetime (RFC 8415 21.4
// suggests 0.5 and 0.8).
func renewTimes(preferred time.Duration) (t1, t2 time.Duration) {
	return (preferred / 2).Truncate(time.Second), (preferred * 4 / 5).Truncate(time.Second)
}

// iaResult is the outcome for one IA_NA of the request.
type iaResult struct {
	iaid [4]byte
	addr netip.Addr // invalid: none assigned
	// drop are addresses the client holds or asked for in this IA that it
	// does not get: they go back with zero lifetimes so it stops using them.
	drop []netip.Addr
	// left, when set, is what the lease has left: a renewal answered from
	// memory while the store is down gets no more than that.
	left time.Duration
}

// addIA adds one IA_NA: the address with the subnet's lifetimes (no more
// than the lease has left, when that is set), or a
// NoAddrsAvail status when none could be assigned.
func addIA(r *dhcpv6.Message, ia iaResult, s *subnet) {
	o := &dhcpv6.OptIANA{IaId: ia.iaid}
	if ia.addr.IsValid() {
		preferred, valid := s.preferred, s.valid
		if ia.left > 0 {
			preferred, valid = min(preferred, ia.left), min(valid, ia.left)
		}
		o.T1, o.T2 = renewTimes(preferred)
		o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: ia.addr.AsSlice(), PreferredLifetime: preferred, ValidLifetime: valid})
	}
	for _, d := range ia.drop {
		o.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: d.AsSlice()})
	}
	if !ia.addr.IsValid() {
		o.Options.Add(&dhcpv6.OptStatusCode{StatusCode: iana.StatusNoAddrsAvail, StatusMessage: "no address for this client"})
	}
	r.AddOption(o)
}

// addNetwork adds the subnet's DNS servers and search list. There is no
// gateway option in DHCPv6, by design: routers announce themselves.
func addNetwork(r *dhcpv6.Message, s *subnet) {
	if s == nil {
		return
	}
	if len(s.dns) > 0 {
		r.AddOption(dhcpv6.OptDNS(s.dns...))
	}
	if len(s.search) > 0 {
		r.AddOption(dhcpv6.OptDomainSearchList(&rfc1035label.Labels{Labels: s.search}))
	}
}

// enterpriseIANA is the enterprise number UEFI puts in its vendor class
// (343, Intel's, for PXEClient and HTTPClient).
const enterpriseIANA = 343

// addBoot adds what the Plan says the client boots: option 59 (always a
// full URL on DHCPv6: tftp://[addr]/file for UEFI PXE, which EDK2 requires,
// http:// for HTTP boot and iPXE), option 60 with the subnet's boot
// parameters (see blockCount for UEFI PXE), and for UEFI HTTP boot the "HTTPClient" vendor class, without
// which EDK2 does not take the reply as an HTTP boot offer. It decides
// nothing, and reports whether it added anything.
//
// A PXEClient vendor class is not echoed: EDK2's PXEv6 (PxeBcDhcp6.c)
// compares it against the start of the option, so a well-formed echo never
// matches, and a DHCP-only offer with option 59 is what boots it.
func addBoot(r *dhcpv6.Message, f boot.Facts, p boot.Plan, s *subnet) bool {
	if p.Action == boot.ActionNone || !strings.Contains(p.BootFile, "://") {
		return false
	}
	r.AddOption(dhcpv6.OptBootFileURL(p.BootFile))
	if s != nil && len(s.bootParams) > 0 && (f.Firmware != boot.FirmwareUEFI || blockCount(s.bootParams[0])) {
		r.AddOption(dhcpv6.OptBootFileParam(s.bootParams...))
	}
	if f.Firmware == boot.FirmwareUEFIHTTP {
		r.AddOption(&dhcpv6.OptVendorClass{EnterpriseNumber: enterpriseIANA, Data: [][]byte{[]byte("HTTPClient")}})
	}
	return true
}

// blockCount reports whether a boot file parameter is what EDK2's PXEv6
// (PxeBcDhcp6BootInfo) takes the first one to be: the boot file's size in
// 512-byte blocks, in decimal. Anything else makes it refuse the boot
// ("PXE-E53: No boot filename received", seen with OVMF), so UEFI PXE
// clients get option 60 only when it is such a number.
func blockCount(p string) bool {
	n, err := strconv.ParseUint(p, 10, 16)
	return err == nil && n > 0
}

// wrapRelays puts the reply inside a relay-reply for each relay the
// request came through (RFC 8415 19.3): hop count, link and peer address
// copied, and the Interface-Id echoed, which the relay may need to find
// the client's port. relays is outermost first.
func wrapRelays(reply dhcpv6.DHCPv6, relays []*dhcpv6.RelayMessage) dhcpv6.DHCPv6 {
	for i := len(relays) - 1; i >= 0; i-- {
		fw := relays[i]
		rr := &dhcpv6.RelayMessage{MessageType: dhcpv6.MessageTypeRelayReply, HopCount: fw.HopCount,
			LinkAddr: fw.LinkAddr, PeerAddr: fw.PeerAddr}
		if iid := fw.Options.GetOne(dhcpv6.OptionInterfaceID); iid != nil {
			rr.AddOption(iid)
		}
		rr.AddOption(dhcpv6.OptRelayMessage(reply))
		reply = rr
	}
	return reply
}
