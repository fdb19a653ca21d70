package dhcp4

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

// labYAML is the inventory the tests serve: two reserved machines on the
// local network, one behind a relay, a pool on each network.
const labYAML = `
server:
  http: ":8080"
distros:
  - name: el9
    release: rhel9
    arch: x86_64
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: el9
hosts:
  - name: bios1
    macs: ["52:54:00:00:00:10"]
    ipv4: 192.0.2.10/24
    profile: p
    netboot: install
  - name: uefi1
    macs: ["52:54:00:00:01:10"]
    ipv4: 192.0.2.11/24
    profile: p
    netboot: install
  - name: far1
    macs: ["52:54:00:00:02:10"]
    ipv4: 198.51.100.20/24
    profile: p
    netboot: install
  - name: elsewhere
    macs: ["52:54:00:00:03:10"]
    ipv4: 203.0.113.9/24
    profile: p
    netboot: install
menu:
  unknown: ignore
dhcp:
  enabled: true
  mode: %s
  interfaces: [%s]
  workers: 4
  subnets:
    - subnet: 192.0.2.0/24
      pool: 192.0.2.100-192.0.2.199
      routers: [192.0.2.1]
      dns: [192.0.2.53, 192.0.2.54]
      domain: lab.example
      ntp: [192.0.2.123]
      lease_time: 1h
    - subnet: 198.51.100.0/24
      pool: 198.51.100.100-198.51.100.102
      routers: [198.51.100.1]
      lease_time: 30m
`

// setup parses the lab inventory, syncs it into st and returns the config
// and a real Booter over st.
func setup(t testing.TB, st store.Store, mode, iface string) (*inventory.Config, *boot.Booter) {
	t.Helper()
	cfg, err := inventory.Parse("lab.yaml", []byte(fmt.Sprintf(labYAML, mode, iface)))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_, err = st.SyncDeclared(context.Background(), store.Declared{
		Distros: cfg.Distros, Profiles: cfg.Profiles, Hosts: cfg.Hosts, Now: time.Now(),
		TokenTTL: time.Hour, NewToken: func() string { n++; return fmt.Sprintf("token%d", n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg, &boot.Booter{Store: st, Config: func() *inventory.Config { return cfg }}
}

type sent struct {
	to netip.AddrPort
	p  *dhcpv4.DHCPv4
}

// recorder stands in for the socket.
type recorder struct {
	mu   sync.Mutex
	sent []sent
}

func (r *recorder) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	p, err := dhcpv4.FromBytes(b)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	r.sent = append(r.sent, sent{to, p})
	r.mu.Unlock()
	return len(b), nil
}

func (r *recorder) take() []sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

type harness struct {
	t      *testing.T
	s      *Server
	st     store.Store
	link   *link
	rec    *recorder
	events []Event
	mu     sync.Mutex
}

func newHarness(t *testing.T, st store.Store, mode string) *harness {
	cfg, booter := setup(t, st, mode, "ksbr0")
	h := &harness{t: t, st: st, rec: &recorder{},
		link: &link{name: "ksbr0", local: netip.MustParseAddr("192.0.2.1"), nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}}
	s, err := New(Options{Config: func() *inventory.Config { return cfg }, Booter: booter, Store: st,
		OnEvent: func(e Event) { h.mu.Lock(); h.events = append(h.events, e); h.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := newCommitter(st, s.commitWindow, s.commitMax, s.commitQueue)
	s.commit.Store(c)
	done := make(chan struct{})
	go func() { c.run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	h.s = s
	return h
}

// do hands one request to the server as if it arrived on port.
func (h *harness) do(p *dhcpv4.DHCPv4, port int) []sent {
	h.t.Helper()
	var wg sync.WaitGroup
	h.s.handle(context.Background(), job{link: h.link, conn: h.rec, port: port, data: p.ToBytes(),
		src: netip.MustParseAddrPort("0.0.0.0:68"), pending: &wg})
	wg.Wait()
	return h.rec.take()
}

func (h *harness) one(p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	h.t.Helper()
	out := h.do(p, serverPort)
	if len(out) != 1 {
		h.t.Fatalf("%d replies to %s, want 1", len(out), p.MessageType())
	}
	return out[0].p
}

func req(t testing.TB, offer *dhcpv4.DHCPv4, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	r, err := dhcpv4.NewRequestFromOffer(offer, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestFullServerReservedPXE(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server")
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
	h := newHarness(t, storetest.NewFake(), "server")
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
	if len(out) != 1 || out[0].to.String() != "192.0.2.77:68" || !out[0].p.YourIPAddr.IsUnspecified() ||
		out[0].p.Options.Has(dhcpv4.OptionIPAddressLeaseTime) || out[0].p.DomainName() != "lab.example" {
		t.Errorf("INFORM reply: %+v", out)
	}
}

func TestRenewRebindSameAddress(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server")
	offer := h.one(packet(t, "52:54:00:00:00:55"))
	ack := h.one(req(t, offer))
	addr := ack.YourIPAddr
	// RENEWING: unicast, ciaddr set, no server id or option 50.
	renew, err := dhcpv4.NewRenewFromAck(ack)
	if err != nil {
		t.Fatal(err)
	}
	out := h.do(renew, serverPort)
	if len(out) != 1 || out[0].p.MessageType() != dhcpv4.MessageTypeAck || !out[0].p.YourIPAddr.Equal(addr) || out[0].to.String() != addr.String()+":68" {
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
	h := newHarness(t, storetest.NewFake(), "server")
	nakFor := func(name string, p *dhcpv4.DHCPv4) {
		t.Helper()
		out := h.do(p, serverPort)
		if len(out) != 1 || out[0].p.MessageType() != dhcpv4.MessageTypeNak {
			t.Errorf("%s: %v, want one NAK", name, out)
			return
		}
		if out[0].to.String() != "255.255.255.255:68" || !out[0].p.YourIPAddr.IsUnspecified() {
			t.Errorf("%s: NAK to %v yiaddr %v", name, out[0].to, out[0].p.YourIPAddr)
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
	if o := h.one(packet(t, "52:54:00:00:03:10")); !strings.HasPrefix(o.YourIPAddr.String(), "192.0.2.1") || o.HostName() != "elsewhere" {
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
	h := newHarness(t, storetest.NewFake(), "server")
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
	h.mu.Lock()
	defer h.mu.Unlock()
	var kinds []EventKind
	for _, e := range h.events {
		kinds = append(kinds, e.Kind)
	}
	if !strings.Contains(fmt.Sprint(kinds), "decline") {
		t.Errorf("no decline event: %v", kinds)
	}
}

func TestRelay(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server")
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
		if o.to.String() != "198.51.100.1:67" {
			t.Errorf("offer sent to %v, want the relay's port 67", o.to)
		}
		if o.p.YourIPAddr.String() != c.want || !o.p.GatewayIPAddr.Equal(net.IPv4(198, 51, 100, 1)) {
			t.Errorf("offer yiaddr %v giaddr %v", o.p.YourIPAddr, o.p.GatewayIPAddr)
		}
		if got := o.p.Options.Get(dhcpv4.OptionRelayAgentInformation); string(got) != string(opt82) {
			t.Errorf("option 82 = %x, want %x verbatim", got, opt82)
		}
		if fmt.Sprint(o.p.Router()) != "[198.51.100.1]" || o.p.IPAddressLeaseTime(0) != 30*time.Minute {
			t.Errorf("relayed subnet options: router %v lease %v", o.p.Router(), o.p.IPAddressLeaseTime(0))
		}
		ack := h.do(req(t, o.p, dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)), dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, opt82)), serverPort)
		if len(ack) != 1 || ack[0].p.MessageType() != dhcpv4.MessageTypeAck || ack[0].to.String() != "198.51.100.1:67" {
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
	if len(out) != 1 || out[0].p.MessageType() != dhcpv4.MessageTypeNak || out[0].to.String() != "198.51.100.1:67" || !out[0].p.IsBroadcast() {
		t.Errorf("relayed NAK: %+v", out)
	}
}

func TestSelectSubnet(t *testing.T) {
	subs := parseSubnets(&inventory.DHCP{Subnets: []inventory.Subnet{
		{Subnet: "192.0.2.0/24", Pool: "192.0.2.100-192.0.2.199"},
		{Subnet: "198.51.100.0/25"},
		{Subnet: "bogus"},
	}})
	if len(subs) != 2 || subs[1].first.IsValid() || subs[0].lease != time.Hour {
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
			got = s.prefix.String()
		}
		if got != c.want {
			t.Errorf("relay %q: %q, want %q", c.relay, got, c.want)
		}
	}
	if s := selectSubnet(subs, netip.Addr{}, []netip.Prefix{netip.MustParsePrefix("203.0.113.1/24")}); s != nil {
		t.Errorf("interface on an unconfigured network got subnet %v", s.prefix)
	}
}

func TestProxy(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "proxy")
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
	h.s.handle(context.Background(), job{link: h.link, conn: h.rec, port: pxePort, data: bs.ToBytes(), src: netip.MustParseAddrPort("192.0.2.57:4011")}) // no lease: answered at once
	out := h.rec.take()
	if len(out) != 1 || out[0].to.String() != "192.0.2.57:4011" || out[0].p.MessageType() != dhcpv4.MessageTypeAck ||
		out[0].p.BootFileName != "ipxe.efi" || !out[0].p.YourIPAddr.IsUnspecified() {
		t.Errorf("4011 reply: %+v", out)
	}
	if l, _ := h.st.Leases(context.Background()); len(l) != 0 {
		t.Errorf("proxy mode wrote leases: %v", l)
	}
}

// TestGroupCommit: many clients at once are committed in a few
// transactions, and no address goes to two of them.
func TestGroupCommit(t *testing.T) {
	st, err := sqlstore.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := newHarness(t, st, "server")
	h.s.commitWindow = 20 * time.Millisecond // generous, so the batching is not at the scheduler's mercy
	c := newCommitter(st, h.s.commitWindow, 256, 1024)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.run(ctx)
	h.s.commit.Store(c)
	const clients = 90 // the pool holds 100
	var wg sync.WaitGroup
	acks := make(chan *dhcpv4.DHCPv4, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := &recorder{}
			run := func(p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
				var wg sync.WaitGroup
				h.s.handle(context.Background(), job{link: h.link, conn: rec, port: serverPort, data: p.ToBytes(), pending: &wg})
				wg.Wait()
				out := rec.take()
				if len(out) != 1 {
					return nil
				}
				return out[0].p
			}
			o := run(packet(t, fmt.Sprintf("52:54:00:10:00:%02x", i)))
			if o == nil {
				return
			}
			if a := run(req(t, o)); a != nil && a.MessageType() == dhcpv4.MessageTypeAck {
				acks <- a
			}
		}()
	}
	wg.Wait()
	close(acks)
	owner := map[string]string{}
	for a := range acks {
		if o, dup := owner[a.YourIPAddr.String()]; dup {
			t.Errorf("%v ACKed to %s and %s", a.YourIPAddr, o, a.ClientHWAddr)
		}
		owner[a.YourIPAddr.String()] = a.ClientHWAddr.String()
	}
	if len(owner) != clients {
		t.Errorf("%d ACKs for %d clients", len(owner), clients)
	}
	leases, _ := st.Leases(context.Background())
	bound := 0
	for _, l := range leases {
		if l.State == store.LeaseBound {
			bound++
			if owner[l.Addr.String()] != l.MAC {
				t.Errorf("stored %v -> %s, ACKed to %s", l.Addr, l.MAC, owner[l.Addr.String()])
			}
		}
	}
	if bound != clients {
		t.Errorf("%d bound leases stored, want %d", bound, clients)
	}
	b, ops := c.batches.Load(), c.ops.Load()
	t.Logf("%d lease ops in %d transactions", ops, b)
	if ops != 2*clients || b > ops/4 {
		t.Errorf("%d ops in %d transactions: want %d ops, batched at least 4 to a transaction", ops, b, 2*clients)
	}
}

func TestDisabledServesNothing(t *testing.T) {
	cfg, err := inventory.Parse("x.yaml", []byte("server: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(Options{Config: func() *inventory.Config { return cfg }, Booter: &boot.Booter{}, Store: storetest.NewFake()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- s.Serve(ctx) }()
	<-s.Ready()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := New(Options{}); err == nil {
		t.Error("New without Config/Booter/Store succeeded")
	}
}

func TestStoreFailureMeansSilence(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), "server")
	cfg := h.s.opt.Config()
	h.s.opt.Store = storetest.Broken{}
	h.s.opt.Booter = &boot.Booter{Store: storetest.Broken{}, Config: func() *inventory.Config { return cfg }}
	c := newCommitter(storetest.Broken{}, time.Millisecond, 8, 8)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.run(ctx)
	h.s.commit.Store(c)
	if out := h.do(packet(t, "52:54:00:00:00:10", dhcpv4.WithOption(vcBIOS)), serverPort); len(out) != 0 {
		t.Errorf("replied although the store is down: %v", out)
	}
}
