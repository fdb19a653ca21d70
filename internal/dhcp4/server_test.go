package dhcp4

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

func req(t testing.TB, offer *dhcpv4.DHCPv4, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	r, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFullServerReservedPXE(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server").start()
	cases := []struct {
		mac       string
		mods      []dhcpv4.Modifier
		addr      string
		file, vc  string
		sname     bool
		hostname  string
		bootFiles bool
	}{
		{"52:54:00:00:00:10", []dhcpv4.Modifier{dhcpv4.WithOption(vcBIOS), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC))},
			"192.0.2.10", "undionly.kpxe", "PXEClient", true, "bios1", true},
		{"52:54:00:00:01:10", []dhcpv4.Modifier{dhcpv4.WithOption(vcUEFI), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64))},
			"192.0.2.11", "ipxe.efi", "PXEClient", true, "uefi1", true},
		{"52:54:00:00:01:10", []dhcpv4.Modifier{dhcpv4.WithOption(vcHTTP), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.Arch(16)))},
			"192.0.2.11", "http://192.0.2.1:8080/ipxe.efi", "HTTPClient", false, "uefi1", true},
		{"52:54:00:00:00:10", []dhcpv4.Modifier{dhcpv4.WithOption(vcBIOS), dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE"))},
			"192.0.2.10", "http://192.0.2.1:8080/boot.ipxe?arch=0&mac=52%3A54%3A00%3A00%3A00%3A10", "PXEClient", false, "bios1", true},
		// An OS asking for an address gets it and no boot options.
		{"52:54:00:00:00:10", nil, "192.0.2.10", "", "", false, "bios1", false},
	}
	for _, c := range cases {
		offer := h.one(packet(t, c.mac, c.mods...))
		if offer.MessageType() != dhcpv4.MessageTypeOffer || offer.YourIPAddr.String() != c.addr {
			t.Fatalf("%s: offer %s %v, want %s", c.mac, offer.MessageType(), offer.YourIPAddr, c.addr)
		}
		ack := h.one(req(t, offer, c.mods...))
		for _, r := range []*dhcpv4.DHCPv4{offer, ack} {
			if r.BootFileName != c.file || r.BootFileNameOption() != c.file || r.ClassIdentifier() != c.vc {
				t.Errorf("%s %s: file %q opt67 %q opt60 %q; want %q %q", c.mac, r.MessageType(), r.BootFileName, r.BootFileNameOption(), r.ClassIdentifier(), c.file, c.vc)
			}
			if c.bootFiles && !r.ServerIPAddr.Equal(net.IPv4(192, 0, 2, 1)) {
				t.Errorf("%s: siaddr %v", c.mac, r.ServerIPAddr)
			}
			if got := r.TFTPServerName(); (got == "192.0.2.1") != c.sname || (r.ServerHostName == "192.0.2.1") != c.sname {
				t.Errorf("%s: option 66 %q sname %q", c.mac, got, r.ServerHostName)
			}
			if r.HostName() != c.hostname {
				t.Errorf("%s: hostname %q", c.mac, r.HostName())
			}
		}
		if ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != c.addr {
			t.Fatalf("ack %s %v", ack.MessageType(), ack.YourIPAddr)
		}
		if l, err := h.st.Lease(context.Background(), netip.MustParseAddr(c.addr)); err != nil || l.State != store.LeaseBound || l.MAC != c.mac {
			t.Errorf("lease after ACK: %+v, %v", l, err)
		}
	}
}

func TestOptions(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server").start()
	offer := h.one(packet(t, "52:54:00:00:00:77"))
	ack := h.one(req(t, offer))
	if ack.YourIPAddr.String() != "192.0.2.100" {
		t.Fatalf("first pool address: %v", ack.YourIPAddr)
	}
	checks := map[string][2]string{
		"mask":   {net.IP(ack.SubnetMask()).String(), "255.255.255.0"},
		"router": {fmt.Sprint(ack.Router()), "[192.0.2.1]"},
		"dns":    {fmt.Sprint(ack.DNS()), "[192.0.2.53 192.0.2.54]"},
		"domain": {ack.DomainName(), "lab.example"},
		"ntp":    {fmt.Sprint(ack.NTPServers()), "[192.0.2.123]"},
		"lease":  {ack.IPAddressLeaseTime(0).String(), "1h0m0s"},
		"t1":     {ack.IPAddressRenewalTime(0).String(), "30m0s"},
		"t2":     {ack.IPAddressRebindingTime(0).String(), "52m30s"},
		"sid":    {ack.ServerIdentifier().String(), "192.0.2.1"},
		"file":   {ack.BootFileName, ""},
	}
	for k, v := range checks {
		if v[0] != v[1] {
			t.Errorf("%s = %s, want %s", k, v[0], v[1])
		}
	}
	// INFORM: options, no address, no lease time, unicast to ciaddr.
	inf := packet(t, "52:54:00:00:00:78", dhcpv4.WithMessageType(dhcpv4.MessageTypeInform), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 77)))
	out := h.do(inf, serverPort)
	if len(out) != 1 || out[0].To.String() != "192.0.2.77:68" || !out[0].P.YourIPAddr.IsUnspecified() ||
		out[0].P.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || out[0].P.DomainName() != "lab.example" {
		t.Errorf("INFORM reply: %+v", out)
	}
}

func TestRenewRebindSameAddress(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server").start()
	offer := h.one(packet(t, "52:54:00:00:00:55"))
	ack := h.one(req(t, offer))
	addr := ack.YourIPAddr
	// RENEWING: unicast, ciaddr set, no server id or option 50.
	renew, err := dhcpv4.NewRenewFromAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	out := h.do(renew, serverPort)
	if len(out) != 1 || out[0].P.MessageType() != dhcpv4.MessageTypeAck || !out[0].P.YourIPAddr.Equal(addr) || out[0].To.String() != addr.String()+":68" {
		t.Fatalf("renew: %+v", out)
	}
	// Anaconda's second DHCP: new xid, a client-id this time.
	d2 := packet(t, "52:54:00:00:00:55", dhcpv4.WithOption(dhcpv4.OptClientIdentifier([]byte{0xff, 1, 2, 3, 4})))
	if o := h.one(d2); !o.YourIPAddr.Equal(addr) {
		t.Errorf("second DHCP got %v, want %v", o.YourIPAddr, addr)
	}
	// RELEASE then DISCOVER: same address again.
	rel, _ := dhcpv4.NewReleaseFromACK(ack)
	if out := h.do(rel, serverPort); len(out) != 0 {
		t.Errorf("release answered: %v", out)
	}
	if l, _ := h.st.Lease(context.Background(), netip.MustParseAddr(addr.String())); l.State != store.LeaseReleased {
		t.Errorf("after release: %+v", l)
	}
	if o := h.one(packet(t, "52:54:00:00:00:55")); !o.YourIPAddr.Equal(addr) {
		t.Errorf("after release got %v, want %v", o.YourIPAddr, addr)
	}
}

func TestNak(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server").start()
	nakFor := func(name string, p *dhcpv4.DHCPv4) {
		t.Helper()
		out := h.do(p, serverPort)
		if len(out) != 1 || out[0].P.MessageType() != dhcpv4.MessageTypeNak {
			t.Errorf("%s: %v, want one NAK", name, out)
			return
		}
		if out[0].To.String() != "255.255.255.255:68" || !out[0].P.YourIPAddr.IsUnspecified() {
			t.Errorf("%s: NAK to %v yiaddr %v", name, out[0].To, out[0].P.YourIPAddr)
		}
	}
	initReboot := func(mac string, ip net.IP) *dhcpv4.DHCPv4 {
		return packet(t, mac, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(ip)))
	}
	// A laptop moved from another network asks for its old address.
	nakFor("wrong subnet", initReboot("52:54:00:00:00:66", net.IPv4(203, 0, 113, 5)))
	// A reserved host asking for anything but its reservation.
	nakFor("not the reservation", initReboot("52:54:00:00:00:10", net.IPv4(192, 0, 2, 150)))
	// An address someone else holds.
	h.one(req(t, h.one(packet(t, "52:54:00:00:00:67"))))
	nakFor("taken", initReboot("52:54:00:00:00:68", net.IPv4(192, 0, 2, 100)))
	// Outside the pool and not a reservation.
	nakFor("not in pool", initReboot("52:54:00:00:00:68", net.IPv4(192, 0, 2, 20)))
	// A reservation in another subnet is not used here: the pool is.
	o := h.one(packet(t, "52:54:00:00:03:10"))
	if a, _ := netip.AddrFromSlice(o.YourIPAddr.To4()); a.Less(netip.MustParseAddr("192.0.2.100")) || o.HostName() != "elsewhere" {
		t.Errorf("host reserved elsewhere: %v %q", o.YourIPAddr, o.HostName())
	}
	// A REQUEST for another server's offer is not ours to answer.
	other := initReboot("52:54:00:00:00:69", net.IPv4(192, 0, 2, 160))
	other.UpdateOption(dhcpv4.OptServerIdentifier(net.IPv4(192, 0, 2, 254)))
	if out := h.do(other, serverPort); len(out) != 0 {
		t.Errorf("answered a REQUEST for another server: %v", out)
	}
}

func TestDeclineQuarantine(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server").start()
	ack := h.one(req(t, h.one(packet(t, "52:54:00:00:00:44"))))
	bad := ack.YourIPAddr
	dec := packet(t, "52:54:00:00:00:44", dhcpv4.WithMessageType(dhcpv4.MessageTypeDecline), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(bad)))
	if out := h.do(dec, serverPort); len(out) != 0 {
		t.Fatalf("decline answered: %v", out)
	}
	l, err := h.st.Lease(context.Background(), netip.MustParseAddr(bad.String()))
	if err != nil || l.State != store.LeaseDeclined || time.Until(l.Expires) < 9*time.Minute {
		t.Fatalf("after decline: %+v, %v", l, err)
	}
	for _, mac := range []string{"52:54:00:00:00:44", "52:54:00:00:00:45"} {
		o := h.one(packet(t, mac, dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(bad))))
		if o.YourIPAddr.Equal(bad) {
			t.Errorf("%s was offered the declined %v", mac, bad)
		}
	}
	if h.Events.Find(dhcpengine.EventDecline, func(*dhcpengine.Event) bool { return true }) == nil {
		t.Errorf("no decline event:\n%s", h.Events)
	}
}

func TestRelay(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server").start()
	opt82 := []byte{1, 4, 'e', 't', 'h', '7', 2, 6, 0x52, 0x54, 0, 0, 0x99, 0x01}
	relayed := func(mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
		mods = append([]dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)), func(d *dhcpv4.DHCPv4) { d.HopCount = 1 },
			dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, opt82)}, mods...)
		return packet(t, mac, mods...)
	}
	for _, c := range []struct{ mac, want string }{
		{"52:54:00:00:02:10", "198.51.100.20"},  // reservation in the relayed subnet
		{"52:54:00:00:02:11", "198.51.100.100"}, // pool of the relayed subnet
	} {
		out := h.do(relayed(c.mac), serverPort)
		if len(out) != 1 {
			t.Fatalf("%d replies", len(out))
		}
		o := out[0]
		if o.To.String() != "198.51.100.1:67" {
			t.Errorf("offer sent to %v, want the relay's port 67", o.To)
		}
		if o.P.YourIPAddr.String() != c.want || !o.P.GatewayIPAddr.Equal(net.IPv4(198, 51, 100, 1)) {
			t.Errorf("offer yiaddr %v giaddr %v", o.P.YourIPAddr, o.P.GatewayIPAddr)
		}
		if got := o.P.Options.Get(dhcpv4.OptionRelayAgentInformation); string(got) != string(opt82) {
			t.Errorf("option 82 = %x, want %x verbatim", got, opt82)
		}
		if fmt.Sprint(o.P.Router()) != "[198.51.100.1]" || o.P.IPAddressLeaseTime(0) != 30*time.Minute {
			t.Errorf("relayed subnet options: router %v lease %v", o.P.Router(), o.P.IPAddressLeaseTime(0))
		}
		ack := h.do(req(t, o.P, dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)), dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, opt82)), serverPort)
		if len(ack) != 1 || ack[0].P.MessageType() != dhcpv4.MessageTypeAck || ack[0].To.String() != "198.51.100.1:67" {
			t.Errorf("relayed ACK: %+v", ack)
		}
	}
	// A relay from a network kickstand does not serve gets nothing.
	stray := packet(t, "52:54:00:00:02:12", dhcpv4.WithGatewayIP(net.IPv4(203, 0, 113, 1)))
	if out := h.do(stray, serverPort); len(out) != 0 {
		t.Errorf("answered a relay of an unconfigured network: %v", out)
	}
	// NAK through a relay: to the relay, broadcast bit set.
	bad := relayed("52:54:00:00:02:13", dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(192, 0, 2, 100))))
	out := h.do(bad, serverPort)
	if len(out) != 1 || out[0].P.MessageType() != dhcpv4.MessageTypeNak || out[0].To.String() != "198.51.100.1:67" || !out[0].P.IsBroadcast() {
		t.Errorf("relayed NAK: %+v", out)
	}
}

func TestSelectSubnet(t *testing.T) {
	subs := parseSubnets(&inventory.DHCP{Subnets: []inventory.Subnet{
		{Subnet: "192.0.2.0/24", Pool: "192.0.2.100-192.0.2.199"},
		{Subnet: "198.51.100.0/25"},
		{Subnet: "bogus"},
	}})
	if len(subs) != 2 || subs[1].First.IsValid() || subs[0].lease != time.Hour {
		t.Fatalf("parsed %+v", subs)
	}
	local := []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}
	for _, c := range []struct {
		relay string
		want  string
	}{
		{"", "192.0.2.0/24"},
		{"198.51.100.1", "198.51.100.0/25"},
		{"198.51.100.200", ""}, // outside the /25
		{"192.0.2.254", "192.0.2.0/24"},
	} {
		var relay netip.Addr
		if c.relay != "" {
			relay = netip.MustParseAddr(c.relay)
		}
		got := ""
		if s := selectSubnet(subs, relay, local); s != nil {
			got = s.Prefix.String()
		}
		if got != c.want {
			t.Errorf("relay %q: %q, want %q", c.relay, got, c.want)
		}
	}
	if s := selectSubnet(subs, netip.Addr{}, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}); s != nil {
		t.Errorf("interface on an unconfigured network got subnet %v", s.Prefix)
	}
}

func TestProxy(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "proxy").start()
	mods := []dhcpv4.Modifier{dhcpv4.WithOption(vcBIOS), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), dhcpv4.WithOption(uuid97)}
	o := h.one(packet(t, "52:54:00:00:00:10", mods...))
	if o.MessageType() != dhcpv4.MessageTypeOffer || !o.YourIPAddr.IsUnspecified() {
		t.Fatalf("proxy offer %s yiaddr %v: want an offer without an address", o.MessageType(), o.YourIPAddr)
	}
	if o.BootFileName != "undionly.kpxe" || o.ClassIdentifier() != "PXEClient" || !o.ServerIPAddr.Equal(net.IPv4(192, 0, 2, 1)) ||
		string(o.Options.Get(dhcpv4.OptionVendorSpecificInformation)) != string(pxeDiscoveryControl) ||
		len(o.Options.Get(dhcpv4.OptionClientMachineIdentifier)) != 17 || o.Options.Has(dhcpv4.OptionIPAddressLeaseTime) {
		t.Errorf("proxy offer options: %s", o.Summary())
	}
	// Not ours: an OS client, a REQUEST on 67, an unknown PXE machine.
	for name, p := range map[string]*dhcpv4.DHCPv4{
		"OS client":      packet(t, "52:54:00:00:00:10"),
		"REQUEST on 67":  packet(t, "52:54:00:00:00:10", append(mods, dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest))...),
		"unknown PXE":    packet(t, "52:54:00:00:09:99", mods...),
		"no lease taken": packet(t, "52:54:00:00:00:10", dhcpv4.WithMessageType(dhcpv4.MessageTypeRelease)),
	} {
		if out := h.do(p, serverPort); len(out) != 0 {
			t.Errorf("%s answered: %v", name, out)
		}
	}
	// The boot-server request on 4011: unicast from the client's new address.
	bs := packet(t, "52:54:00:00:01:10", dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithClientIP(net.IPv4(192, 0, 2, 57)),
		dhcpv4.WithOption(vcUEFI), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)))
	h.handle(h.rec, bs, pxePort, "192.0.2.57:4011") // no lease: answered at once
	out := enginetest.Take(h.rec, dhcpv4.FromBytes)
	if len(out) != 1 || out[0].To.String() != "192.0.2.57:4011" || out[0].P.MessageType() != dhcpv4.MessageTypeAck ||
		out[0].P.BootFileName != "ipxe.efi" || !out[0].P.YourIPAddr.IsUnspecified() {
		t.Errorf("4011 reply: %+v", out)
	}
	if l, _ := h.st.Leases(context.Background(), 4); len(l) != 0 {
		t.Errorf("proxy mode wrote leases: %v", l)
	}
}
