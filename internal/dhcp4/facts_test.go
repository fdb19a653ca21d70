package dhcp4

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
)

// packet builds a request the way the named client would send it.
func packet(t testing.TB, mac string, mods ...dhcpv4.Modifier) *dhcpv4.DHCPv4 {
	t.Helper()
	hw, err := net.ParseMAC(mac)
	if err != nil {
		t.Fatal(err)
	}
	p, err := dhcpv4.NewDiscovery(hw, mods...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Option payloads as real clients send them.
var (
	// SeaBIOS + iPXE ROM before chainloading, and a bare PXE 2.1 ROM.
	vcBIOS = dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")
	// OVMF PXE.
	vcUEFI = dhcpv4.OptClassIdentifier("PXEClient:Arch:00007:UNDI:003016")
	// OVMF's architecture, option 93.
	archEFI64 = dhcpv4.OptClientArch(iana.EFI_X86_64)
	// OVMF HTTP boot.
	vcHTTP = dhcpv4.OptClassIdentifier("HTTPClient:Arch:00016:UNDI:003001")
	// option 97 from an EFI GUID 8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08
	// (first three fields little-endian on the wire).
	uuid97 = dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{0,
		0x52, 0x6d, 0x0f, 0x8c, 0x9e, 0x5b, 0x71, 0x4b, 0x9a, 0x3d, 0x2f, 0x1e, 0x0c, 0x9b, 0x8a, 0x08})
)

func TestParseFacts(t *testing.T) {
	local := netip.MustParseAddr("192.0.2.1")
	cases := []struct {
		name string
		mods []dhcpv4.Modifier
		want boot.Facts
	}{
		{"plain OS client", nil,
			boot.Facts{Arch: boot.ArchNone, Firmware: boot.FirmwareUnknown}},
		{"BIOS PXE", []dhcpv4.Modifier{dhcpv4.WithOption(vcBIOS), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), dhcpv4.WithOption(uuid97)},
			boot.Facts{Arch: boot.ArchBIOS, Firmware: boot.FirmwareBIOS, VendorClass: "PXEClient:Arch:00000:UNDI:002001", UUID: "8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08"}},
		{"UEFI x64 PXE", []dhcpv4.Modifier{dhcpv4.WithOption(vcUEFI), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64))},
			boot.Facts{Arch: boot.ArchEFIX64, Firmware: boot.FirmwareUEFI, VendorClass: "PXEClient:Arch:00007:UNDI:003016"}},
		{"arch only in the vendor class", []dhcpv4.Modifier{dhcpv4.WithOption(vcUEFI)},
			boot.Facts{Arch: boot.ArchEFIX64, Firmware: boot.FirmwareUEFI, VendorClass: "PXEClient:Arch:00007:UNDI:003016"}},
		{"UEFI HTTP", []dhcpv4.Modifier{dhcpv4.WithOption(vcHTTP), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.Arch(16)))},
			boot.Facts{Arch: boot.ArchHTTPX64, Firmware: boot.FirmwareUEFIHTTP, VendorClass: "HTTPClient:Arch:00016:UNDI:003001"}},
		{"iPXE raw user class", []dhcpv4.Modifier{dhcpv4.WithOption(vcBIOS), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
			dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE"))},
			boot.Facts{Arch: boot.ArchBIOS, Firmware: boot.FirmwareIPXE, VendorClass: "PXEClient:Arch:00000:UNDI:002001", UserClass: []string{"iPXE"}}},
		{"RFC 3004 user class", []dhcpv4.Modifier{dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte{4, 'i', 'P', 'X', 'E', 3, 'f', 'o', 'o'})},
			boot.Facts{Arch: boot.ArchNone, Firmware: boot.FirmwareIPXE, UserClass: []string{"iPXE", "foo"}}},
		{"FlexBoot: option 175 only", []dhcpv4.Modifier{dhcpv4.WithOption(vcBIOS), dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(175), []byte{0xb1, 1, 1})},
			boot.Facts{Arch: boot.ArchBIOS, Firmware: boot.FirmwareIPXE, VendorClass: "PXEClient:Arch:00000:UNDI:002001"}},
		{"relayed, renewing", []dhcpv4.Modifier{dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)), dhcpv4.WithClientIP(net.IPv4(198, 51, 100, 20))},
			boot.Facts{Arch: boot.ArchNone, Relay: netip.MustParseAddr("198.51.100.1"), ClientIP: netip.MustParseAddr("198.51.100.20")}},
		{"zero UUID is no UUID", []dhcpv4.Modifier{dhcpv4.WithOption(dhcpv4.OptGeneric(dhcpv4.OptionClientMachineIdentifier, make([]byte, 17)))},
			boot.Facts{Arch: boot.ArchNone}},
		{"NUL-padded vendor class", []dhcpv4.Modifier{dhcpv4.WithGeneric(dhcpv4.OptionClassIdentifier, []byte("PXEClient\x00\x00"))},
			boot.Facts{Arch: boot.ArchNone, Firmware: boot.FirmwareBIOS, VendorClass: "PXEClient"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := packet(t, "52:54:00:AB:CD:EF", c.mods...)
			// Round-trip through the wire format, as the server sees it.
			p, err := dhcpv4.FromBytes(p.ToBytes())
			if err != nil {
				t.Fatal(err)
			}
			got := ParseFacts(p, local)
			want := c.want
			want.MAC, want.Family, want.ServerIP = "52:54:00:ab:cd:ef", 4, local
			if got.MAC != want.MAC || got.Arch != want.Arch || got.Firmware != want.Firmware || got.VendorClass != want.VendorClass ||
				got.UUID != want.UUID || got.Relay != want.Relay || got.ClientIP != want.ClientIP || got.Family != 4 ||
				got.ServerIP != local || !slices.Equal(got.UserClass, want.UserClass) {
				t.Errorf("got  %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestParseFactsNonEthernet(t *testing.T) {
	p := packet(t, "52:54:00:ab:cd:ef")
	p.HWType = iana.HWTypeInfiniband
	if f := ParseFacts(p, netip.Addr{}); f.MAC != "" {
		t.Errorf("InfiniBand hwaddr taken as a MAC: %q", f.MAC)
	}
	if f := ParseFacts(nil, netip.Addr{}); f.Family != 4 || f.Arch != boot.ArchNone {
		t.Errorf("nil packet: %+v", f)
	}
}

// FuzzParse feeds raw bytes through the server's parse path: FromBytes,
// then ParseFacts. Neither may panic on anything a network can deliver.
func FuzzParse(f *testing.F) {
	seeds := [][]dhcpv4.Modifier{
		{dhcpv4.WithOption(vcBIOS), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)), dhcpv4.WithOption(uuid97)},
		{dhcpv4.WithOption(vcUEFI), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.EFI_X86_64)), dhcpv4.WithOption(uuid97)},
		{dhcpv4.WithOption(vcHTTP), dhcpv4.WithOption(dhcpv4.OptClientArch(iana.Arch(16)))},
		{dhcpv4.WithOption(vcBIOS), dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte("iPXE")),
			dhcpv4.WithGeneric(dhcpv4.GenericOptionCode(175), []byte{0xb1, 1, 1, 0x13, 1, 1})},
		{dhcpv4.WithGatewayIP(net.IPv4(198, 51, 100, 1)), dhcpv4.WithGeneric(dhcpv4.OptionRelayAgentInformation, []byte{1, 4, 'e', 't', 'h', '7', 2, 2, 0, 1}),
			dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest), dhcpv4.WithOption(dhcpv4.OptRequestedIPAddress(net.IPv4(198, 51, 100, 20)))},
		{dhcpv4.WithGeneric(dhcpv4.OptionUserClassInformation, []byte{4, 'i', 'P', 'X', 'E', 9}),
			dhcpv4.WithGeneric(dhcpv4.OptionClientSystemArchitectureType, []byte{0}),
			dhcpv4.WithGeneric(dhcpv4.OptionClientMachineIdentifier, []byte{0, 1, 2})},
	}
	for _, mods := range seeds {
		f.Add(packet(f, "52:54:00:00:00:10", mods...).ToBytes())
	}
	f.Add([]byte{})
	f.Add(make([]byte, 240))
	f.Fuzz(func(t *testing.T, b []byte) {
		(&Server{}).Opens(&dhcpengine.Packet{Data: b}) // read raw as packets arrive: must not panic
		p, err := dhcpv4.FromBytes(b)
		if err != nil {
			return
		}
		fa := ParseFacts(p, netip.MustParseAddr("192.0.2.1"))
		if fa.Family != 4 {
			t.Fatalf("family %d", fa.Family)
		}
		// The reply path reads the same packet; it must not panic either.
		r := newReply(p, dhcpv4.MessageTypeOffer, netip.MustParseAddr("192.0.2.1"))
		addBoot(r, p, fa, boot.Plan{Action: boot.ActionInstall, BootFile: "undionly.kpxe"}, netip.MustParseAddr("192.0.2.1"), true)
		_ = replyAddr(p, false)
		_ = r.ToBytes()
	})
}

// Opens finds a DISCOVER by its option 53 in the raw packet.
func TestOpens(t *testing.T) {
	disc := packet(t, "52:54:00:00:00:10", dhcpv4.WithOption(vcBIOS))
	padded := append(append([]byte(nil), disc.ToBytes()[:240]...), 0, 0)
	padded = append(padded, disc.ToBytes()[240:]...)
	for _, c := range []struct {
		what string
		b    []byte
		want bool
	}{
		{"DISCOVER", disc.ToBytes(), true},
		{"DISCOVER after pad options", padded, true},
		{"REQUEST", packet(t, "52:54:00:00:00:10", dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest)).ToBytes(), false},
		{"truncated", disc.ToBytes()[:241], false},
		{"no cookie", make([]byte, 300), false},
	} {
		if got := (&Server{}).Opens(&dhcpengine.Packet{Data: c.b}); got != c.want {
			t.Errorf("%s: Opens = %v", c.what, got)
		}
	}
}
