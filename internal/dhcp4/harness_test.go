package dhcp4

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// labYAML is the inventory the tests serve: two reserved machines on the
// local network, one behind a relay, a pool on each network.
const labYAML = enginetest.DistrosYAML + `hosts:
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
	return enginetest.Setup(t, st, fmt.Sprintf(labYAML, mode, iface))
}

type sent = enginetest.Decoded[*dhcpv4.DHCPv4]

type harness struct {
	*enginetest.Harness[*Server]
	s    *Server
	st   store.Store
	link *link
	rec  *enginetest.Recorder
}

func newHarness(t *testing.T, st store.Store, mode string, tweak ...func(*dhcpengine.Options)) *harness {
	l := &link{name: "ksbr0", local: netip.MustParseAddr("192.0.2.1"), nets: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/24")}}
	eh := enginetest.NewHarness(t, st, l, New, func(st store.Store) (*inventory.Config, dhcpengine.Booter) {
		return setup(t, st, mode, "ksbr0")
	}, tweak...)
	return &harness{Harness: eh, s: eh.S, st: st, link: l, rec: eh.Rec}
}

func (h *harness) start() *harness { h.Start(); return h }

// handle hands p to the server as if it arrived on port from src, through
// conn, and waits for its commits.
func (h *harness) handle(conn dhcpengine.Conn, p *dhcpv4.DHCPv4, port int, src string) {
	h.Deliver(conn, port, src, p.ToBytes())
}

// do hands one request to the server as if it arrived on port.
func (h *harness) do(p *dhcpv4.DHCPv4, port int) []sent {
	h.T.Helper()
	h.handle(h.rec, p, port, "0.0.0.0:68")
	return enginetest.Take(h.rec, dhcpv4.FromBytes)
}

func (h *harness) one(p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
	h.T.Helper()
	out := h.do(p, serverPort)
	if len(out) != 1 {
		h.T.Fatalf("%d replies to %s, want 1", len(out), p.MessageType())
	}
	return out[0].P
}

// startServer runs an in-process server whose sockets live in the lab's
// server namespace, with a SQLite store in a temporary directory.
func startServer(t *testing.T, lab *vmtest.Lab, mode string, tweak func(*inventory.Config)) (*Server, store.Store, *enginetest.Events) {
	t.Helper()
	return enginetest.StartServer(t, lab, New, func(st store.Store) (*inventory.Config, dhcpengine.Booter) {
		return setup(t, st, mode, lab.Bridge)
	}, tweak)
}
