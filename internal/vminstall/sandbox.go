package vminstall

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
)

// The sandbox network: documentation prefixes only, on a bridge inside a
// namespace the test boot creates and removes.
var (
	sandboxNet4  = netip.MustParsePrefix("192.0.2.0/24")
	sandboxNet6  = netip.MustParsePrefix("2001:db8::/64")
	sandboxSrv4  = netip.MustParseAddr("192.0.2.1")
	sandboxAlt4  = netip.MustParseAddr("192.0.2.254")
	sandboxSrv6  = netip.MustParseAddr("2001:db8::1")
	sandboxAlt6  = netip.MustParseAddr("2001:db8::fffe")
	sandboxPool4 = "192.0.2.100-192.0.2.199"
	sandboxPool6 = "2001:db8::1000-2001:db8::1fff"
)

// SandboxBridge is the bridge's name inside the sandbox namespace.
const SandboxBridge = "ksbr0"

// SandboxNet is the bridge side of a test boot: the addresses the bridge
// carries and the server addresses written into URLs.
type SandboxNet struct {
	Addrs  []netip.Prefix // on the bridge
	V4, V6 netip.Addr     // server.address_v4/v6 of the sandbox
}

// PlanSandboxNet gives the bridge the documentation networks and, when the
// host's own static address lies elsewhere, that network's gateway: the
// installer then reaches the server through "its" gateway, which is the
// bridge itself, exactly as it would be routed in production. A network
// without a gateway gets an on-link server address instead.
func PlanSandboxNet(h *inventory.Host) SandboxNet {
	n := SandboxNet{V4: sandboxSrv4, V6: sandboxSrv6}
	if p, ok := h.Addr4(); ok && p.Addr() == sandboxSrv4 {
		n.V4 = sandboxAlt4
	}
	if p, ok := h.Addr6(); ok && p.Addr() == sandboxSrv6 {
		n.V6 = sandboxAlt6
	}
	n.Addrs = []netip.Prefix{netip.PrefixFrom(n.V4, sandboxNet4.Bits()), netip.PrefixFrom(n.V6, sandboxNet6.Bits())}
	add := func(p netip.Prefix, ok bool, gw string, home netip.Prefix, srv *netip.Addr) {
		if !ok || home.Contains(p.Addr()) {
			return
		}
		if a, err := netip.ParseAddr(gw); err == nil && a != p.Addr() && p.Masked().Contains(a) {
			n.Addrs = append(n.Addrs, netip.PrefixFrom(a, p.Bits()))
			return
		}
		a := p.Masked().Addr().Next()
		if a == p.Addr() {
			a = a.Next()
		}
		n.Addrs = append(n.Addrs, netip.PrefixFrom(a, p.Bits()))
		*srv = a
	}
	p4, ok4 := h.Addr4()
	add(p4, ok4, h.Gateway4, sandboxNet4, &n.V4)
	p6, ok6 := h.Addr6()
	add(p6, ok6, h.Gateway6, sandboxNet6, &n.V6)
	return n
}

// SandboxConfig is the config the sandboxed server runs: the real config's
// server settings with paths made absolute, only the host under test with
// its profile and distro as the real store has them (so live edits and
// imports count) and in install state, DHCP served only on the sandbox
// bridge, and unknown machines ignored.
func SandboxConfig(real *inventory.Config, t *boot.Target, n SandboxNet, dataDir string, family int) *inventory.Config {
	abs := func(p string) string {
		if p == "" {
			return ""
		}
		if a, err := filepath.Abs(real.Abs(p)); err == nil {
			return a
		}
		return real.Abs(p)
	}
	s := real.Server
	port := s.HTTPPort
	if port == 0 {
		port = 8080
	}
	c := &inventory.Config{Server: inventory.Server{
		HTTP: fmt.Sprintf(":%d", port), HTTPPort: port,
		AddressV4: n.V4.String(), AddressV6: n.V6.String(),
		DataDir: dataDir, Root: abs(s.Root), Templates: abs(s.Templates),
		TokenTTL: s.TokenTTL, RouteWait: s.RouteWait,
	}}
	for _, l := range s.Loaders {
		c.Server.Loaders = append(c.Server.Loaders, abs(l))
	}
	d := *t.Distro
	d.Tree = abs(d.Tree)
	c.Distros = []inventory.Distro{d}
	c.Profiles = []inventory.Profile{*t.Profile}
	h := t.Record.Host
	h.Netboot = inventory.StateInstall
	c.Hosts = []inventory.Host{h}
	c.Menu = inventory.Menu{Unknown: "ignore", Title: real.Menu.Title, Timeout: real.Menu.Timeout}
	c.DHCP = inventory.DHCP{Enabled: true, Mode: "server", Interfaces: []string{SandboxBridge}, Subnets: []inventory.Subnet{{
		Subnet: sandboxNet4.String(), Pool: sandboxPool4, Routers: []string{sandboxSrv4.String()},
	}}}
	if n.V4 == sandboxAlt4 {
		c.DHCP.Subnets[0].Routers = []string{sandboxAlt4.String()}
	}
	if family == 6 {
		c.DHCP6 = inventory.DHCP6{Enabled: true, Interfaces: []string{SandboxBridge}, Subnets: []inventory.Subnet6{{
			Prefix: sandboxNet6.String(), Pool: sandboxPool6,
		}}}
	}
	c.TFTP = inventory.TFTP{Enabled: true, Listen: ":69", MaxTransfers: real.TFTP.MaxTransfers}
	if real.Syslog.Enabled {
		_, p, _ := splitPort(real.Syslog.Listen)
		c.Syslog = inventory.Syslog{Enabled: true, Listen: ":" + p}
	}
	return c
}

func splitPort(hp string) (string, string, bool) {
	for i := len(hp) - 1; i >= 0; i-- {
		if hp[i] == ':' {
			return hp[:i], hp[i+1:], true
		}
	}
	return hp, "", false
}

// ServeSandbox runs the sandboxed server of a test boot. Unlike serve it
// does not refuse a config whose files are missing: a wrong kernel path is
// exactly what a test boot must show, as the 404 the host would get.
func ServeSandbox(ctx context.Context, configPath, dataDir string, log *slog.Logger) error {
	in, err := server.Open(ctx, configPath, server.Options{DataDir: dataDir, Log: log})
	if err != nil {
		return err
	}
	defer in.Close()
	return in.Serve(ctx, func(a net.Addr) {
		log.Info(SandboxReady, "http", a.String())
	})
}

// SandboxReady is the log message the sandbox prints once every server
// listens.
const SandboxReady = "sandbox ready"
