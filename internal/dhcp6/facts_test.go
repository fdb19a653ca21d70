package dhcp6

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
)

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	hw, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}

// solicit builds a Solicit from the given DUID with one IA_NA (IAID 1).
func solicit(t testing.TB, duid dhcpv6.DUID, opts ...dhcpv6.Option) *dhcpv6.Message {
	t.Helper()
	m, err := dhcpv6.NewMessage()
	if err != nil {
		t.Fatal(err)
	}
	m.MessageType = dhcpv6.MessageTypeSolicit
	m.AddOption(dhcpv6.OptClientID(duid))
	m.AddOption(dhcpv6.OptElapsedTime(0))
	m.AddOption(&dhcpv6.OptIANA{IaId: [4]byte{0, 0, 0, 1}})
	for _, o := range opts {
		m.AddOption(o)
	}
	return m
}

// relayed wraps m in one relay-forward per link address, innermost first;
// opts79[i], when set, is the client link-layer address relay i adds.
func relayed(t testing.TB, m dhcpv6.DHCPv6, links []string, peer string, opts79 map[int]string) *dhcpv6.RelayMessage {
	t.Helper()
	var out dhcpv6.DHCPv6 = m
	for i, l := range links {
		p := net.ParseIP(peer)
		if i > 0 {
			p = net.ParseIP(links[i-1])
		}
		r, err := dhcpv6.EncapsulateRelay(out, dhcpv6.MessageTypeRelayForward, net.ParseIP(l), p)
		if err != nil {
			t.Fatal(err)
		}
		r.AddOption(dhcpv6.OptInterfaceID([]byte("port7")))
		if mac, ok := opts79[i]; ok {
			r.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, mustMAC(t, mac)))
		}
		out = r
	}
	return out.(*dhcpv6.RelayMessage)
}

// reparse sends p through the wire format, as the server sees it.
func reparse(t testing.TB, p dhcpv6.DHCPv6) dhcpv6.DHCPv6 {
	t.Helper()
	q, err := dhcpv6.FromBytes(p.ToBytes())
	if err != nil {
		t.Fatal(err)
	}
	return q
}

var (
	duidLL  = &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x10}}
	duidLLT = &dhcpv6.DUIDLLT{HWType: iana.HWTypeEthernet, Time: 700000000, LinkLayerAddr: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 0x11}}
	// OVMF: DUID-UUID from the system GUID 8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08,
	// first three fields little-endian as EDK2 copies the EFI_GUID.
	duidUUID = &dhcpv6.DUIDUUID{UUID: [16]byte{0x52, 0x6d, 0x0f, 0x8c, 0x9e, 0x5b, 0x71, 0x4b, 0x9a, 0x3d, 0x2f, 0x1e, 0x0c, 0x9b, 0x8a, 0x08}}
	duidEN   = &dhcpv6.DUIDEN{EnterpriseNumber: 32473, EnterpriseIdentifier: []byte{1, 2, 3, 4}}

	vc = func(s string) dhcpv6.Option {
		return &dhcpv6.OptVendorClass{EnterpriseNumber: 343, Data: [][]byte{[]byte(s)}}
	}
	archOpt = func(a iana.Arch) dhcpv6.Option { return dhcpv6.OptClientArchType(a) }
	ipxeUC  = &dhcpv6.OptUserClass{UserClasses: [][]byte{[]byte("iPXE")}}
)

func TestParseFacts(t *testing.T) {
	local := netip.MustParseAddr("2001:db8::1")
	cases := []struct {
		name string
		p    func(t testing.TB) dhcpv6.DHCPv6
		src  string // packet source, for EUI-64
		want boot.Facts
	}{
		{"dhclient DUID-LL", func(t testing.TB) dhcpv6.DHCPv6 { return solicit(t, duidLL) }, "",
			boot.Facts{MAC: "52:54:00:00:00:10", DUID: duidLL.ToBytes()}},
		{"dhclient DUID-LLT", func(t testing.TB) dhcpv6.DHCPv6 { return solicit(t, duidLLT) }, "",
			boot.Facts{MAC: "52:54:00:00:00:11", DUID: duidLLT.ToBytes()}},
		{"OVMF PXEv6: DUID-UUID, MAC from the EUI-64 link-local source",
			func(t testing.TB) dhcpv6.DHCPv6 {
				return solicit(t, duidUUID, archOpt(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016"))
			}, "fe80::5054:ff:fe00:110",
			boot.Facts{MAC: "52:54:00:00:01:10", UUID: "8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08", DUID: duidUUID.ToBytes(),
				Arch: boot.ArchEFIX64, Firmware: boot.FirmwareUEFI, VendorClass: "PXEClient:Arch:00007:UNDI:003016"}},
		{"stable-privacy link-local gives no MAC",
			func(t testing.TB) dhcpv6.DHCPv6 { return solicit(t, duidEN) }, "fe80::1c2d:3e4f:5a6b:7c8d",
			boot.Facts{DUID: duidEN.ToBytes()}},
		{"arch only in the vendor class",
			func(t testing.TB) dhcpv6.DHCPv6 { return solicit(t, duidEN, vc("PXEClient:Arch:00011:UNDI:003016")) }, "",
			boot.Facts{DUID: duidEN.ToBytes(), Arch: boot.ArchEFIARM64, Firmware: boot.FirmwareUEFI, VendorClass: "PXEClient:Arch:00011:UNDI:003016"}},
		{"UEFI HTTP boot",
			func(t testing.TB) dhcpv6.DHCPv6 {
				return solicit(t, duidLL, archOpt(iana.EFI_X86_64_HTTP), vc("HTTPClient:Arch:00016:UNDI:003016"))
			}, "",
			boot.Facts{MAC: "52:54:00:00:00:10", DUID: duidLL.ToBytes(), Arch: boot.ArchHTTPX64, Firmware: boot.FirmwareUEFIHTTP, VendorClass: "HTTPClient:Arch:00016:UNDI:003016"}},
		{"iPXE user class",
			func(t testing.TB) dhcpv6.DHCPv6 {
				return solicit(t, duidLL, archOpt(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003010"), ipxeUC)
			}, "",
			boot.Facts{MAC: "52:54:00:00:00:10", DUID: duidLL.ToBytes(), Arch: boot.ArchEFIX64, Firmware: boot.FirmwareIPXE,
				VendorClass: "PXEClient:Arch:00007:UNDI:003010", UserClass: []string{"iPXE"}}},
		{"relayed with option 79: the relay's MAC beats the DUID's",
			func(t testing.TB) dhcpv6.DHCPv6 {
				return relayed(t, solicit(t, duidLLT), []string{"2001:db8:5::1"}, "fe80::1", map[int]string{0: "52:54:00:00:02:10"})
			}, "2001:db8::2",
			boot.Facts{MAC: "52:54:00:00:02:10", DUID: duidLLT.ToBytes(), Relay: netip.MustParseAddr("2001:db8:5::1")}},
		{"two relays: option 79 from the inner one, link of the inner one",
			func(t testing.TB) dhcpv6.DHCPv6 {
				return relayed(t, solicit(t, duidEN), []string{"2001:db8:5::1", "2001:db8:6::1"}, "fe80::1",
					map[int]string{0: "52:54:00:00:02:11", 1: "52:54:00:00:09:99"})
			}, "2001:db8::2",
			boot.Facts{MAC: "52:54:00:00:02:11", DUID: duidEN.ToBytes(), Relay: netip.MustParseAddr("2001:db8:5::1")}},
		{"relayed without 79: the peer address's EUI-64, not the relay's source",
			func(t testing.TB) dhcpv6.DHCPv6 {
				return relayed(t, solicit(t, duidEN), []string{"2001:db8:5::1"}, "fe80::5054:ff:fe00:212", nil)
			}, "fe80::5054:ff:fe99:9999",
			boot.Facts{MAC: "52:54:00:00:02:12", DUID: duidEN.ToBytes(), Relay: netip.MustParseAddr("2001:db8:5::1")}},
		{"relay with an unspecified link-address",
			func(t testing.TB) dhcpv6.DHCPv6 {
				return relayed(t, solicit(t, duidLL), []string{"::"}, "fe80::1", nil)
			}, "",
			boot.Facts{MAC: "52:54:00:00:00:10", DUID: duidLL.ToBytes()}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var src netip.Addr
			if tc.src != "" {
				src = netip.MustParseAddr(tc.src)
			}
			got := parseFacts(reparse(t, tc.p(t)), local, src)
			want := tc.want
			want.Family, want.ServerIP = 6, local
			if want.Arch == 0 && want.Firmware == "" && want.VendorClass == "" {
				want.Arch = boot.ArchNone
			}
			if got.MAC != want.MAC || got.UUID != want.UUID || got.Arch != want.Arch || got.Firmware != want.Firmware ||
				got.Family != 6 || got.ServerIP != local || got.VendorClass != want.VendorClass || got.Relay != want.Relay ||
				!slices.Equal(got.UserClass, want.UserClass) || !slices.Equal(got.DUID, want.DUID) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseFactsEdges(t *testing.T) {
	local := netip.MustParseAddr("2001:db8::1")
	if f := ParseFacts(nil, local); f.Family != 6 || f.MAC != "" || f.Arch != boot.ArchNone {
		t.Errorf("nil packet: %+v", f)
	}
	// 32 relays are accepted, 33 are not.
	for _, depth := range []int{32, 33} {
		links := make([]string, depth)
		for i := range links {
			links[i] = "2001:db8:7::1"
		}
		p := relayed(t, solicit(t, duidLL), links, "fe80::1", nil)
		q, err := dhcpv6.FromBytes(p.ToBytes())
		if err != nil {
			t.Fatal(err)
		}
		f := ParseFacts(q, local)
		if (f.MAC != "") != (depth <= maxHops) {
			t.Errorf("%d relays: MAC %q", depth, f.MAC)
		}
	}
	// A relay-reply is not a request.
	rr, _ := dhcpv6.EncapsulateRelay(solicit(t, duidLL), dhcpv6.MessageTypeRelayReply, net.ParseIP("2001:db8::5"), net.ParseIP("fe80::1"))
	if f := ParseFacts(reparse(t, rr), local); f.MAC != "" {
		t.Errorf("relay-reply parsed as a request: %+v", f)
	}
}

func TestEUI64(t *testing.T) {
	for in, want := range map[string]string{
		"fe80::5054:ff:fe12:3456":     "52:54:00:12:34:56",
		"fe80::21b:21ff:fe3c:4d5e":    "00:1b:21:3c:4d:5e",
		"2001:db8::5054:ff:fe12:3456": "", // only link-local addresses are trusted for this
		"fe80::1":                     "",
	} {
		if got := eui64MAC(netip.MustParseAddr(in)); got != want {
			t.Errorf("eui64MAC(%s) = %q, want %q", in, got, want)
		}
	}
}

// FuzzParse feeds raw packets through the parse the server does: the
// library's FromBytes (relay nesting included), then ParseFacts and the
// relay unwrapping; neither may panic whatever the bytes.
func FuzzParse(f *testing.F) {
	f.Add(solicit(f, duidLL, archOpt(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016")).ToBytes())
	f.Add(solicit(f, duidUUID, ipxeUC).ToBytes())
	f.Add(relayed(f, solicit(f, duidLLT), []string{"2001:db8:5::1"}, "fe80::1", map[int]string{0: "52:54:00:00:02:10"}).ToBytes())
	deep := make([]string, 32)
	for i := range deep {
		deep[i] = "2001:db8:7::1"
	}
	f.Add(relayed(f, solicit(f, duidEN), deep, "fe80::1", map[int]string{31: "52:54:00:00:02:10"}).ToBytes())
	f.Add([]byte{12, 0})
	f.Add([]byte{1, 0, 0, 1, 0, 1, 0, 2, 0, 4})
	local := netip.MustParseAddr("2001:db8::1")
	f.Fuzz(func(t *testing.T, b []byte) {
		// The rate limits' peek reads raw packets before anything else:
		// it must never fail, and where the library finds an allocating
		// message's client id, the peek finds the same one.
		peeked, peekOK := peekClientID(b, 0)
		opens := (&Server{}).Opens(&dhcpengine.Packet{Data: b})
		p, err := dhcpv6.FromBytes(b)
		if err != nil {
			return
		}
		if m, _, err := unwrap(p); err == nil && opens != (m.MessageType == dhcpv6.MessageTypeSolicit) {
			t.Fatalf("Opens = %v for a %s", opens, m.MessageType)
		}
		if m, _, err := unwrap(p); err == nil && m.Options.ClientID() != nil {
			switch m.MessageType {
			case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
				if want := m.Options.ClientID().ToBytes(); peekOK && !bytes.Equal(peeked, want) {
					t.Fatalf("peek found client id %x, the parse %x", peeked, want)
				}
			}
		}
		fa := parseFacts(p, local, netip.MustParseAddr("fe80::5054:ff:fe00:1"))
		if fa.Family != 6 {
			t.Fatalf("family %d", fa.Family)
		}
		if m, relays, err := unwrap(p); err == nil {
			if m == nil || len(relays) > maxHops {
				t.Fatalf("unwrap: %v, %d relays", m, len(relays))
			}
			_ = wrapRelays(m, relays).ToBytes()
		}
	})
}

// Opens finds a Solicit in the raw packet, inside relay-forwards too.
func TestOpens(t *testing.T) {
	sol := solicit(t, duidLL)
	adv := &dhcpv6.Message{MessageType: dhcpv6.MessageTypeRequest, Options: sol.Options}
	for _, c := range []struct {
		what string
		b    []byte
		want bool
	}{
		{"Solicit", sol.ToBytes(), true},
		{"relayed Solicit", relayed(t, sol, []string{"2001:db8:5::1", "2001:db8:6::1"}, "fe80::1", nil).ToBytes(), true},
		{"Request", adv.ToBytes(), false},
		{"relayed Request", relayed(t, adv, []string{"2001:db8:5::1"}, "fe80::1", nil).ToBytes(), false},
		{"truncated relay", relayed(t, sol, []string{"2001:db8:5::1"}, "fe80::1", nil).ToBytes()[:40], false},
	} {
		if got := (&Server{}).Opens(&dhcpengine.Packet{Data: c.b}); got != c.want {
			t.Errorf("%s: Opens = %v", c.what, got)
		}
	}
}
