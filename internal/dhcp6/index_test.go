package dhcp6

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// indexYAML has a host whose DHCPv6 client is known only by a DUID
// reservation: its DUID-EN names no MAC or UUID, and the MAC the inventory
// lists is another NIC's, never seen in its packets. It has the address
// %s and the DUID reservations are %s.
const indexYAML = enginetest.DistrosYAML + `hosts:
  - name: duidonly
    macs: ["52:54:00:00:00:77"]
    ipv6: %s
    profile: p
    netboot: install
menu:
  unknown: ignore
dhcp6:
  enabled: true
  interfaces: [ksbr0]
  duids: [%s]
  subnets:
    - prefix: 2001:db8::/64
      pool: 2001:db8::1000-2001:db8::10ff
`

// The reservations are the boot package's host index, the one the boot
// decision identifies clients by: a host reserved by DUID alone gets its
// address and boots, a reload or another server's change is seen by the
// next packet, and no packet reads the store to identify its client.
func TestReservationsAreTheBootIndex(t *testing.T) {
	enginetest.ForEachStore(t, testReservationsAreTheBootIndex)
}

func testReservationsAreTheBootIndex(t *testing.T, st store.Store) {
	const resv = `{duid: "00:02:00:00:7e:d9:01:02:03:04", host: duidonly}`
	live := enginetest.NewLive(t, st, fmt.Sprintf(indexYAML, "2001:db8::20/64", resv))
	h := newHarnessOn(t, live)
	exchange := func(what, addr, url string) {
		t.Helper()
		duidExchange(t, h, live, what, addr, url)
	}
	exchange("reserved by DUID", "2001:db8::20", "tftp://[2001:db8::1]/ipxe.efi")

	// A reload that drops the reservation: the next packet is an unknown
	// client's (a pool address, no boot options).
	live.Reload(t, fmt.Sprintf(indexYAML, "2001:db8::20/64", ""))
	exchange("reservation removed", "pool", "")

	// A reload that restores it with another address.
	live.Reload(t, fmt.Sprintf(indexYAML, "2001:db8::22/64", resv))
	exchange("reservation moved", "2001:db8::22", "tftp://[2001:db8::1]/ipxe.efi")

	// Another server sharing the store moves it again; this one's index
	// follows the store (as `serve` does every 0.5 s).
	enginetest.NewLive(t, st, fmt.Sprintf(indexYAML, "2001:db8::23/64", resv))
	if err := live.Booter.Follow(context.Background()); err != nil {
		t.Fatal(err)
	}
	exchange("changed by another server", "2001:db8::23", "tftp://[2001:db8::1]/ipxe.efi")
}

// A host with no MAC and no UUID at all, matched by its DUID reservation
// alone, gets its address and boots.
func TestDUIDOnlyHostBoots(t *testing.T) {
	enginetest.ForEachStore(t, func(t *testing.T, st store.Store) {
		yaml := strings.Replace(indexYAML, "    macs: [\"52:54:00:00:00:77\"]\n", "", 1)
		live := enginetest.NewLive(t, st, fmt.Sprintf(yaml, "2001:db8::21/64", `{duid: "00:02:00:00:7e:d9:01:02:03:04", host: duidonly}`))
		duidExchange(t, newHarnessOn(t, live), live, "DUID-only host", "2001:db8::21", "tftp://[2001:db8::1]/ipxe.efi")
	})
}

// duidExchange runs a Solicit/Request of the DUID-EN client (UEFI x86-64)
// and checks the address ("pool": any pool address) and boot URL of both
// answers, and that answering read nothing from the store.
func duidExchange(t *testing.T, h *harness, live *enginetest.Live, what, addr, url string) {
	t.Helper()
	uefi := []dhcpv6.Option{archOpt(iana.EFI_X86_64), vc("PXEClient:Arch:00007:UNDI:003016")}
	live.St.Reads()
	adv := h.one(solicit(t, duidEN, uefi...))
	rep := h.one(requestFor(t, adv, uefi...))
	for _, m := range []*dhcpv6.Message{adv, rep} {
		if a, _ := iaAddr(t, m); a.String() != addr && !(addr == "pool" && a.IsValid() && a.String() >= "2001:db8::1000") {
			t.Errorf("%s: %s gave %v, want %s", what, m.MessageType, a, addr)
		}
		if bootURL(m) != url {
			t.Errorf("%s: %s boot URL %q, want %q", what, m.MessageType, bootURL(m), url)
		}
	}
	if n := live.St.Reads(); n != 0 {
		t.Errorf("%s: %d store reads of hosts or leases while answering, want 0 (the index answers)", what, n)
	}
}

// newHarnessOn is newHarness over a live inventory.
func newHarnessOn(t *testing.T, live *enginetest.Live) *harness {
	l := &link{name: "ksbr0", local: netip.MustParseAddr("2001:db8::1"), nets: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/64")}}
	eh := enginetest.NewHarness(t, live.St, l, New, func(store.Store) (*inventory.Config, dhcpengine.Booter) {
		return live.Config(), live.Booter
	}, func(o *dhcpengine.Options) { o.Config = live.Config })
	eh.S.serverID = serverDUIDForTests
	eh.Start()
	return &harness{Harness: eh, s: eh.S, st: live.St, rec: eh.Rec}
}
