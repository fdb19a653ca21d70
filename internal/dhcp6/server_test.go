package dhcp6

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// labYAML is the inventory the tests serve: machines reserved by MAC, by
// UUID and by DUID on the local link, one behind a relay, a small pool.
const labYAML = enginetest.DistrosYAML + `  - name: g
    distro: el9
    loader: grub
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
hosts:
  - name: pxe1
    macs: ["52:54:00:00:00:10"]
    ipv6: 2001:db8::10/64
    profile: p
    netboot: install
  - name: grub1
    macs: ["52:54:00:00:00:11"]
    ipv6: 2001:db8::11/64
    profile: g
    netboot: install
  - name: ovmf1
    uuid: 8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08
    ipv6: 2001:db8::12/64
    profile: p
    netboot: install
  - name: byduid
    macs: ["52:54:00:00:00:99"]
    ipv6: 2001:db8::13/64
    profile: p
    netboot: local
  - name: far1
    macs: ["52:54:00:00:02:10"]
    ipv6: 2001:db8:5::10/64
    profile: p
    netboot: install
menu:
  unknown: ignore
dhcp6:
  enabled: true
  interfaces: [%s]
  workers: 4
  duids:
    - {duid: "00:02:00:00:7e:d9:01:02:03:04", host: byduid}
  subnets:
    - prefix: 2001:db8::/64
      pool: 2001:db8::1000-2001:db8::1001
      dns: [2001:db8::53, 2001:db8::54]
      domain_search: [lab.example, example.com]
      preferred_lifetime: 30m
      valid_lifetime: 1h
      boot_params: ["console=ttyS0"]
    - prefix: 2001:db8:5::/64
`

func setup(t testing.TB, st store.Store, iface string) (*inventory.Config, *boot.Booter) {
	t.Helper()
	return enginetest.Setup(t, st, fmt.Sprintf(labYAML, iface))
}

type sent = enginetest.Decoded[dhcpv6.DHCPv6]

type harness struct {
	*enginetest.Harness[*Server]
	s   *Server
	st  store.Store
	rec *enginetest.Recorder
}

var serverDUIDForTests = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x02, 0, 0, 0, 0, 1}}

func newHarness(t *testing.T, st store.Store, tweak ...func(*dhcpengine.Options)) *harness {
	l := &link{name: "ksbr0", local: netip.MustParseAddr("2001:db8::1"), nets: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}}
	eh := enginetest.NewHarness(t, st, l, New, func(st store.Store) (*inventory.Config, dhcpengine.Booter) {
		return setup(t, st, "ksbr0")
	}, tweak...)
	eh.S.serverID = serverDUIDForTests
	eh.Start()
	return &harness{Harness: eh, s: eh.S, st: st, rec: eh.Rec}
}

// do hands one packet to the server as if it came from src.
func (h *harness) do(p dhcpv6.DHCPv6, src string) []sent {
	h.T.Helper()
	h.Deliver(h.rec, serverPort, src, p.ToBytes())
	return enginetest.Take(h.rec, dhcpv6.FromBytes)
}

const clientSrc = "[fe80::1%ksbr0]:546"

// one expects exactly one reply, a client message sent to the client.
func (h *harness) one(p dhcpv6.DHCPv6) *dhcpv6.Message {
	h.T.Helper()
	out := h.do(p, clientSrc)
	if len(out) != 1 {
		h.T.Fatalf("%d replies to %s, want 1", len(out), p.Type())
	}
	if out[0].To.String() != clientSrc {
		h.T.Errorf("reply sent to %s, want %s", out[0].To, clientSrc)
	}
	m, ok := out[0].P.(*dhcpv6.Message)
	if !ok {
		h.T.Fatalf("reply is %s", out[0].P.Type())
	}
	return m
}

// request follows an Advertise the way a client does.
func requestFor(t testing.TB, adv *dhcpv6.Message, opts ...dhcpv6.Option) *dhcpv6.Message {
	t.Helper()
	r, err := dhcpv6.NewRequestFromAdvertise(adv)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range opts {
		r.AddOption(o)
	}
	return r
}

// withType turns a copy of m into another message type with a new xid.
func withType(m *dhcpv6.Message, mt dhcpv6.MessageType, drop ...dhcpv6.OptionCode) *dhcpv6.Message {
	c := &dhcpv6.Message{MessageType: mt, TransactionID: dhcpv6.TransactionID{9, 9, byte(mt)}}
	for _, o := range m.Options.Options {
		skip := false
		for _, d := range drop {
			skip = skip || o.Code() == d
		}
		if !skip {
			c.AddOption(o)
		}
	}
	return c
}

func iaAddr(t testing.TB, m *dhcpv6.Message) (netip.Addr, *dhcpv6.OptIAAddress) {
	t.Helper()
	ia := m.Options.OneIANA()
	if ia == nil {
		t.Fatalf("%s without IA_NA", m.MessageType)
	}
	a := ia.Options.OneAddress()
	if a == nil {
		return netip.Addr{}, nil
	}
	ip, _ := netip.AddrFromSlice(a.IPv6Addr)
	return ip, a
}

func bootURL(m *dhcpv6.Message) string { return m.Options.BootFileURL() }

func vendorClass(m *dhcpv6.Message) string {
	if v := m.Options.VendorClass(343); len(v) > 0 {
		return string(v[0])
	}
	return ""
}

// Reservations matched by MAC (DUID-LL, DUID-LLT), by UUID (DUID-UUID) and
// by a configured DUID, and the boot URL each firmware gets.
func TestReservationsAndBootURLs(t *testing.T) {
	enginetest.ForEachStore(t, testReservationsAndBootURLs)
}

func testReservationsAndBootURLs(t *testing.T, st store.Store) {
	h := newHarness(t, st)
	llt := func(mac string) dhcpv6.DUID {
		return &dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, Time: 1, LinkLayerAddr: mustMAC(t, mac)}
	}
	ll := func(mac string) dhcpv6.DUID {
		return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: mustMAC(t, mac)}
	}
	uefi := []dhcpv6.Option{archOpt(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016"),
		dhcpv6.OptRequestedOption(dhcpv6.OptionBootfileURL, dhcpv6.OptionBootfileParam, dhcpv6.OptionDNSRecursiveNameServer)}
	http := []dhcpv6.Option{archOpt(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003016")}
	cases := []struct {
		name string
		duid dhcpv6.DUID
		opts []dhcpv6.Option
		addr string
		url  string
		vc   string
	}{
		{"UEFI PXE arch 7, iPXE profile, DUID-LL", ll("52:54:00:00:00:10"), uefi, "2001:db8::10", "tftp://[2001:db8::1]/ipxe.efi", ""},
		{"UEFI PXE arch 7, GRUB profile, DUID-LLT", llt("52:54:00:00:00:11"), uefi, "2001:db8::11", "tftp://[2001:db8::1]/grubx64.efi", ""},
		{"UEFI HTTP arch 16: http URL and HTTPClient echoed", ll("52:54:00:00:00:10"), http, "2001:db8::10", "http://[2001:db8::1]:8080/ipxe.efi", "HTTPClient"},
		{"iPXE: the script, not iPXE again", ll("52:54:00:00:00:10"), append([]dhcpv6.Option{ipxeUC}, uefi...), "2001:db8::10",
			"http://[2001:db8::1]:8080/boot.ipxe?arch=7&mac=52%3A54%3A00%3A00%3A00%3A10", ""},
		{"OVMF DUID-UUID matched by SMBIOS UUID", duidUUID, uefi, "2001:db8::12", "tftp://[2001:db8::1]/ipxe.efi", ""},
		{"an OS reserved by MAC gets its address and no boot options", llt("52:54:00:00:00:10"), nil, "2001:db8::10", "", ""},
		{"reserved by DUID only", duidEN, nil, "2001:db8::13", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			adv := h.one(solicit(t, c.duid, c.opts...))
			if adv.MessageType != dhcpv6.MessageTypeAdvertise {
				t.Fatalf("got %s", adv.MessageType)
			}
			rep := h.one(requestFor(t, adv, c.opts...))
			if rep.MessageType != dhcpv6.MessageTypeReply {
				t.Fatalf("got %s", rep.MessageType)
			}
			for _, m := range []*dhcpv6.Message{adv, rep} {
				if a, _ := iaAddr(t, m); a.String() != c.addr {
					t.Errorf("%s: address %v, want %s", m.MessageType, a, c.addr)
				}
				if bootURL(m) != c.url || vendorClass(m) != c.vc {
					t.Errorf("%s: option 59 %q vendor class %q; want %q %q", m.MessageType, bootURL(m), vendorClass(m), c.url, c.vc)
				}
				// EDK2's PXE takes option 60 as the file size: a UEFI PXE
				// client gets it only when it is a number.
				wantParam := c.url != "" && !strings.HasPrefix(c.url, "tftp://")
				if params := m.Options.BootFileParam(); (len(params) == 1 && params[0] == "console=ttyS0") != wantParam {
					t.Errorf("%s: option 60 %q", m.MessageType, params)
				}
				if sid := m.Options.ServerID(); sid == nil || !sid.Equal(serverDUIDForTests) {
					t.Errorf("%s: server id %v", m.MessageType, sid)
				}
			}
			l, err := h.st.Lease(context.Background(), netip.MustParseAddr(c.addr))
			if err != nil || l.State != store.LeaseBound || l.ClientID == "" {
				t.Errorf("lease after Reply: %+v, %v", l, err)
			}
		})
	}
}

func TestOptionsAndLifetimes(t *testing.T) {
	h := newHarness(t, storetest.NewFake())
	adv := h.one(solicit(t, duidLL))
	rep := h.one(requestFor(t, adv))
	_, a := iaAddr(t, rep)
	ia := rep.Options.OneIANA()
	if a.PreferredLifetime != 30*time.Minute || a.ValidLifetime != time.Hour || ia.T1 != 15*time.Minute || ia.T2 != 24*time.Minute {
		t.Errorf("lifetimes: preferred %v valid %v T1 %v T2 %v", a.PreferredLifetime, a.ValidLifetime, ia.T1, ia.T2)
	}
	if got := fmt.Sprint(rep.Options.DNS()); got != "[2001:db8::53 2001:db8::54]" {
		t.Errorf("DNS = %s", got)
	}
	if l := rep.Options.DomainSearchList(); l == nil || strings.Join(l.Labels, ",") != "lab.example,example.com" {
		t.Errorf("domain search = %v", l)
	}
	if cid := rep.Options.ClientID(); cid == nil || !cid.Equal(duidLL) {
		t.Errorf("client id not echoed: %v", cid)
	}
	// Every option the server sends is one of these: no gateway, no
	// boot options for an OS.
	allowed := map[dhcpv6.OptionCode]bool{dhcpv6.OptionClientID: true, dhcpv6.OptionServerID: true, dhcpv6.OptionIANA: true,
		dhcpv6.OptionDNSRecursiveNameServer: true, dhcpv6.OptionDomainSearchList: true}
	for _, o := range rep.Options.Options {
		if !allowed[o.Code()] {
			t.Errorf("unexpected option %s", o.Code())
		}
	}
}

func TestUnknownClients(t *testing.T) {
	h := newHarness(t, storetest.NewFake())
	client := func(i int) dhcpv6.DUID {
		return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 0, 0x0f, byte(i)}}
	}
	// The pool has two addresses; unknown firmware gets no boot options
	// (menu.unknown is ignore).
	got := map[netip.Addr]bool{}
	for i := 0; i < 2; i++ {
		adv := h.one(solicit(t, client(i), archOpt(iana.EFI_X86_64)))
		a, _ := iaAddr(t, adv)
		if !a.IsValid() || got[a] || bootURL(adv) != "" {
			t.Fatalf("client %d: %v, boot %q", i, a, bootURL(adv))
		}
		got[a] = true
		h.one(requestFor(t, adv))
	}
	// A third unknown client: no address, not firmware with a plan, so no
	// Advertise at all.
	if out := h.do(solicit(t, client(3)), clientSrc); len(out) != 0 {
		t.Errorf("exhausted pool: %d replies", len(out))
	}
	// ...but its Request is answered, with NoAddrsAvail.
	adv := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeAdvertise}
	adv.AddOption(dhcpv6.OptClientID(client(3)))
	adv.AddOption(dhcpv6.OptServerID(serverDUIDForTests))
	adv.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}})
	rep := h.one(requestFor(t, adv))
	ia := rep.Options.OneIANA()
	if st := ia.Options.Status(); st == nil || st.StatusCode != iana.StatusNoAddrsAvail || ia.Options.OneAddress() != nil {
		t.Errorf("Request in an exhausted pool: %v", ia)
	}
	// A Request for another server is not ours to answer.
	other := requestFor(t, adv)
	other.UpdateOption(dhcpv6.OptServerID(&dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{2, 0, 0, 0, 0, 9}}))
	if out := h.do(other, clientSrc); len(out) != 0 {
		t.Errorf("Request for another server answered")
	}
	// Nor a Solicit naming a server, or one without a client id.
	bad := solicit(t, client(4))
	bad.AddOption(dhcpv6.OptServerID(serverDUIDForTests))
	noCID := withType(solicit(t, client(5)), dhcpv6.MessageTypeSolicit, dhcpv6.OptionClientID)
	for _, p := range []*dhcpv6.Message{bad, noCID} {
		if out := h.do(p, clientSrc); len(out) != 0 {
			t.Errorf("malformed Solicit answered: %v", p.Summary())
		}
	}
	if st := h.s.Stats(); st.Ignored < 3 {
		t.Errorf("ignored = %d", st.Ignored)
	}
}

func TestDeclineAndRelease(t *testing.T) { enginetest.ForEachStore(t, testDeclineAndRelease) }

func testDeclineAndRelease(t *testing.T, st store.Store) {
	h := newHarness(t, st)
	ctx := context.Background()
	a1 := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 0, 0x0e, 1}}
	rep := h.one(requestFor(t, h.one(solicit(t, a1))))
	addr, _ := iaAddr(t, rep)
	if !addr.IsValid() {
		t.Fatal("no address")
	}
	// Decline: Reply with Success, the address quarantined.
	dec := withType(requestFor(t, h.one(solicit(t, a1))), dhcpv6.MessageTypeDecline)
	r := h.one(dec)
	if st := r.Options.Status(); r.MessageType != dhcpv6.MessageTypeReply || st == nil || st.StatusCode != iana.StatusSuccess {
		t.Fatalf("Decline answered with %s %v", r.MessageType, st)
	}
	l, err := h.st.Lease(ctx, addr)
	if err != nil || l.State != store.LeaseDeclined || l.ClientID != "" || !l.Expires.After(time.Now().Add(9*time.Minute)) {
		t.Fatalf("after Decline: %+v, %v", l, err)
	}
	// Neither the decliner nor anyone else is offered it now.
	for i := byte(1); i <= 2; i++ {
		for _, r := range h.do(solicit(t, &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 0, 0x0e, i}}), clientSrc) {
			if a, _ := iaAddr(t, r.P.(*dhcpv6.Message)); a == addr {
				t.Errorf("quarantined %v offered again", addr)
			}
		}
	}
	if !h.hasEvent(dhcpengine.EventDecline, addr) {
		t.Error("no decline event")
	}

	// Release: Success, the row kept for the client's return.
	b := &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x10}}
	rep = h.one(requestFor(t, h.one(solicit(t, b))))
	rel := withType(requestFor(t, h.one(solicit(t, b))), dhcpv6.MessageTypeRelease)
	if r := h.one(rel); r.Options.Status() == nil || r.Options.Status().StatusCode != iana.StatusSuccess {
		t.Errorf("Release reply %v", r.Summary())
	}
	if l, err := h.st.Lease(ctx, netip.MustParseAddr("2001:db8::10")); err != nil || l.State != store.LeaseReleased {
		t.Errorf("after Release: %+v, %v", l, err)
	}
	if !h.hasEvent(dhcpengine.EventRelease, netip.MustParseAddr("2001:db8::10")) {
		t.Error("no release event")
	}
}

func (h *harness) hasEvent(k dhcpengine.EventKind, ip netip.Addr) bool {
	return h.Events.Find(k, func(e *dhcpengine.Event) bool { return e.IP == ip }) != nil
}

func TestRapidCommitRenewRebind(t *testing.T) {
	h := newHarness(t, storetest.NewFake())
	ctx := context.Background()
	sol := solicit(t, duidLL)
	sol.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
	rep := h.one(sol)
	if rep.MessageType != dhcpv6.MessageTypeReply || rep.GetOneOption(dhcpv6.OptionRapidCommit) == nil {
		t.Fatalf("Rapid Commit answered with %s", rep.Summary())
	}
	if l, err := h.st.Lease(ctx, netip.MustParseAddr("2001:db8::10")); err != nil || l.State != store.LeaseBound {
		t.Fatalf("after Rapid Commit: %+v, %v", l, err)
	}
	// Renew naming a wrong address: the reservation, and the wrong one
	// back with zero lifetimes.
	ren := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeRenew, TransactionID: dhcpv6.TransactionID{1, 2, 3}}
	ren.AddOption(dhcpv6.OptClientID(duidLL))
	ren.AddOption(dhcpv6.OptServerID(serverDUIDForTests))
	ia := &dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}}
	ia.Options.Add(&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8::77"), PreferredLifetime: time.Hour, ValidLifetime: time.Hour})
	ren.AddOption(ia)
	r := h.one(ren)
	addrs := r.Options.OneIANA().Options.Addresses()
	if len(addrs) != 2 || addrs[0].IPv6Addr.String() != "2001:db8::10" || addrs[0].ValidLifetime != time.Hour ||
		addrs[1].IPv6Addr.String() != "2001:db8::77" || addrs[1].ValidLifetime != 0 || addrs[1].PreferredLifetime != 0 {
		t.Errorf("Renew reply: %v", r.Options.OneIANA())
	}
	// Rebind (no server id) of the right address extends it.
	reb := withType(ren, dhcpv6.MessageTypeRebind, dhcpv6.OptionServerID)
	reb.UpdateOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8::10")}}}})
	r = h.one(reb)
	if a, _ := iaAddr(t, r); a.String() != "2001:db8::10" || len(r.Options.OneIANA().Options.Addresses()) != 1 {
		t.Errorf("Rebind reply: %v", r.Options.OneIANA())
	}
	// Confirm of an address off the link: NotOnLink.
	conf := withType(ren, dhcpv6.MessageTypeConfirm, dhcpv6.OptionServerID)
	r = h.one(conf)
	if st := r.Options.Status(); st == nil || st.StatusCode != iana.StatusSuccess {
		t.Errorf("Confirm on link: %v", st)
	}
	conf.UpdateOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}, Options: dhcpv6.IdentityOptions{Options: dhcpv6.Options{
		&dhcpv6.OptIAAddress{IPv6Addr: net.ParseIP("2001:db8:99::10")}}}})
	r = h.one(conf)
	if st := r.Options.Status(); st == nil || st.StatusCode != iana.StatusNotOnLink {
		t.Errorf("Confirm off link: %v", st)
	}
}

func TestInformationRequest(t *testing.T) {
	h := newHarness(t, storetest.NewFake())
	ir := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeInformationRequest, TransactionID: dhcpv6.TransactionID{4, 5, 6}}
	ir.AddOption(dhcpv6.OptClientID(duidLL))
	ir.AddOption(archOpt(iana.EFI_X86_64))
	ir.AddOption(ipxeUC)
	r := h.one(ir)
	if r.MessageType != dhcpv6.MessageTypeReply || r.Options.OneIANA() != nil || len(r.Options.DNS()) != 2 ||
		!strings.HasPrefix(bootURL(r), "http://[2001:db8::1]:8080/boot.ipxe?") {
		t.Errorf("Information-request reply: %s", r.Summary())
	}
}

// A Solicit through two relays: subnet from the inner relay's link, the
// MAC from its option 79, and a relay-reply per relay back to the outer
// relay's port 547 with each Interface-Id.
func TestRelayed(t *testing.T) {
	h := newHarness(t, storetest.NewFake())
	// A DUID with no MAC in it, and not the one reserved for byduid.
	sol := solicit(t, &dhcpv6.DUIDEN{EnterpriseNumber: 32473, EnterpriseIdentifier: []byte{9}}, archOpt(iana.EFI_X86_64))
	fw := relayed(t, sol, []string{"2001:db8:5::1", "2001:db8:6::1"}, "fe80::5", map[int]string{0: "52:54:00:00:02:10"})
	out := h.do(fw, "[2001:db8::fe]:547")
	if len(out) != 1 || out[0].To.String() != "[2001:db8::fe]:547" {
		t.Fatalf("replies %v", out)
	}
	outer, ok := out[0].P.(*dhcpv6.RelayMessage)
	if !ok || outer.MessageType != dhcpv6.MessageTypeRelayReply || outer.HopCount != 1 || !outer.LinkAddr.Equal(net.ParseIP("2001:db8:6::1")) ||
		string(outer.Options.InterfaceID()) != "port7" {
		t.Fatalf("outer relay-reply: %v", out[0].P.Summary())
	}
	inner, ok := outer.Options.RelayMessage().(*dhcpv6.RelayMessage)
	if !ok || inner.HopCount != 0 || !inner.LinkAddr.Equal(net.ParseIP("2001:db8:5::1")) || !inner.PeerAddr.Equal(net.ParseIP("fe80::5")) ||
		string(inner.Options.InterfaceID()) != "port7" {
		t.Fatalf("inner relay-reply: %v", outer.Summary())
	}
	adv, ok := inner.Options.RelayMessage().(*dhcpv6.Message)
	if !ok || adv.MessageType != dhcpv6.MessageTypeAdvertise || adv.TransactionID != sol.TransactionID {
		t.Fatalf("inner message: %v", inner.Summary())
	}
	if a, _ := iaAddr(t, adv); a.String() != "2001:db8:5::10" || bootURL(adv) != "tftp://[2001:db8::1]/ipxe.efi" {
		t.Errorf("relayed Advertise: %v %q", a, bootURL(adv))
	}
	// With the Relay Source Port option the reply goes to the relay's port.
	fw.AddOption(dhcpv6.OptRelayPort(1547))
	if out := h.do(fw, "[2001:db8::fe]:1547"); len(out) != 1 || out[0].To.Port() != 1547 {
		t.Errorf("relay source port: %v", out)
	}
	// A relay on a link kickstand has no subnet for: silence.
	stray := relayed(t, sol, []string{"2001:db8:99::1"}, "fe80::5", map[int]string{0: "52:54:00:00:02:10"})
	if out := h.do(stray, "[2001:db8::fe]:547"); len(out) != 0 {
		t.Errorf("unknown link answered")
	}
}

// A store that fails gives no reply at all, never an address it could not
// record.
func TestBrokenStore(t *testing.T) {
	h := newHarness(t, storetest.NewFake(), func(o *dhcpengine.Options) {
		o.Store = storetest.Broken{}
		o.Booter = &boot.Booter{Store: storetest.Broken{}, Config: o.Config}
	})
	if out := h.do(solicit(t, duidLL), clientSrc); len(out) != 0 {
		t.Errorf("broken store: %d replies", len(out))
	}
}

func TestBootParamsUEFIPXE(t *testing.T) {
	p := boot.Plan{Action: boot.ActionInstall, BootFile: "tftp://[2001:db8::1]/ipxe.efi"}
	uefi := boot.Facts{Firmware: boot.FirmwareUEFI, Arch: boot.ArchEFIX64}
	for _, tc := range []struct {
		params []string
		want   bool
	}{{[]string{"2048"}, true}, {[]string{"console=ttyS0"}, false}, {[]string{"70000"}, false}, {[]string{"0"}, false}, {nil, false}} {
		r := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeReply}
		if !addBoot(r, uefi, p, &subnet{bootParams: tc.params}) {
			t.Fatal("no boot options")
		}
		if got := r.GetOneOption(dhcpv6.OptionBootfileParam) != nil; got != tc.want {
			t.Errorf("params %q: option 60 sent = %v", tc.params, got)
		}
		if bootURL(r) != p.BootFile || r.GetOneOption(dhcpv6.OptionVendorClass) != nil {
			t.Errorf("params %q: %s", tc.params, r.Summary())
		}
	}
	if addBoot(&dhcpv6.Message{}, uefi, boot.Plan{Action: boot.ActionNone, BootFile: p.BootFile}, nil) {
		t.Error("ActionNone added boot options")
	}
}

// startServer runs an in-process server whose socket lives in the lab's
// server namespace, with a SQLite store in a temporary directory.
func startServer(t *testing.T, lab *vmtest.Lab, tweak func(*inventory.Config)) (*Server, store.Store, *enginetest.Events) {
	t.Helper()
	return enginetest.StartServer(t, lab, New, func(st store.Store) (*inventory.Config, dhcpengine.Booter) {
		return setup(t, st, lab.Bridge)
	}, tweak)
}
