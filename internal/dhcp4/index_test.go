package dhcp4

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// indexYAML is one host, by MAC, with the address %s.
const indexYAML = enginetest.DistrosYAML + `hosts:
  - name: bios1
    macs: ["52:54:00:00:00:10"]
    ipv4: %s
    profile: p
    netboot: install
menu:
  unknown: ignore
dhcp:
  enabled: true
  interfaces: [ksbr0]
  subnets:
    - subnet: 192.0.2.0/24
      pool: 192.0.2.100-192.0.2.199
`

// The reservations are the boot package's host index: a reload, another
// server's change and a live host added or removed through the API are
// seen by the next packet, and no packet reads the store to identify its
// client.
func TestReservationsAreTheBootIndex(t *testing.T) {
	enginetest.ForEachStore(t, testReservationsAreTheBootIndex)
}

func testReservationsAreTheBootIndex(t *testing.T, st store.Store) {
	live := enginetest.NewLive(t, st, fmt.Sprintf(indexYAML, "192.0.2.10/24"))
	l := &link{name: "ksbr0", local: netip.MustParseAddr("192.0.2.1"), nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	eh := enginetest.NewHarness(t, live.St, l, New, func(store.Store) (*inventory.Config, dhcpengine.Booter) {
		return live.Config(), live.Booter
	}, func(o *dhcpengine.Options) { o.Config = live.Config })
	h := (&harness{Harness: eh, s: eh.S, st: live.St, link: l, rec: eh.Rec}).start()
	dora := func(what, mac, addr, file string) {
		t.Helper()
		live.St.Reads()
		offer := h.one(packet(t, mac, dhcpv4.WithOption(vcBIOS)))
		ack := h.one(req(t, offer, dhcpv4.WithOption(vcBIOS)))
		for _, r := range []*dhcpv4.DHCPv4{offer, ack} {
			got := r.YourIPAddr.String()
			if addr == "pool" && r.YourIPAddr[3] >= 100 {
				got = "pool"
			}
			if got != addr || r.BootFileName != file {
				t.Errorf("%s: %s gave %v %q, want %s %q", what, r.MessageType(), r.YourIPAddr, r.BootFileName, addr, file)
			}
		}
		if n := live.St.Reads(); n != 0 {
			t.Errorf("%s: %d store reads of hosts or leases while answering, want 0 (the index answers)", what, n)
		}
	}
	const mac, liveMAC = "52:54:00:00:00:10", "52:54:00:00:00:20"
	dora("reserved", mac, "192.0.2.10", "undionly.kpxe")
	live.Reload(t, fmt.Sprintf(indexYAML, "192.0.2.20/24"))
	dora("reservation moved by a reload", mac, "192.0.2.20", "undionly.kpxe")
	enginetest.NewLive(t, st, fmt.Sprintf(indexYAML, "192.0.2.30/24"))
	if err := live.Booter.Follow(context.Background()); err != nil {
		t.Fatal(err)
	}
	dora("changed by another server", mac, "192.0.2.30", "undionly.kpxe")

	// A live host added and removed through the API's lifecycle calls.
	dora("unknown", liveMAC, "pool", "")
	ctx := context.Background()
	if _, err := live.Svc.AddHost(ctx, inventory.Host{Name: "live1", MACs: []string{liveMAC}, IPv4: "192.0.2.40/24", Profile: "p", Netboot: inventory.StateInstall},
		install.ByAPI("t")); err != nil {
		t.Fatal(err)
	}
	dora("live host added", liveMAC, "192.0.2.40", "undionly.kpxe")
	if err := live.Svc.RemoveHost(ctx, "live1", install.ByAPI("t")); err != nil {
		t.Fatal(err)
	}
	dora("live host removed", liveMAC, "pool", "")
}
