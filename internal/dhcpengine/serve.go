package dhcpengine

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync/atomic"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Serve runs the family's server until ctx is done. Disabled, it only
// waits: a DHCP server that starts by itself on a LAN is an outage.
// Otherwise open opens the family's sockets (on the calling goroutine, so
// a caller may run Serve on a thread inside another network namespace),
// the config's rate limits apply unless SetLimits was called, and Run
// answers through h until ctx is done.
func (e *Engine) Serve(ctx context.Context, h Handler, enabled bool, open func() ([]*Socket, error), workers int, rl inventory.RateLimit) error {
	if !enabled {
		e.log.Info(fmt.Sprintf("DHCPv%d disabled", e.opt.Family))
		close(e.ready)
		<-ctx.Done()
		return nil
	}
	socks, err := open()
	if err != nil {
		for _, s := range socks {
			if c, ok := s.Conn.(io.Closer); ok {
				c.Close()
			}
		}
		return fmt.Errorf("dhcp%d: %w", e.opt.Family, err)
	}
	e.LimitsDefault(LimitsFrom(rl))
	e.Run(ctx, h, socks, workers, func() { close(e.ready) })
	return nil
}

// Ready is closed once Serve has opened its sockets (or found the server
// disabled).
func (e *Engine) Ready() <-chan struct{} { return e.ready }

// Base is what each family's server is built on: the engine, and the
// family's subnets, parsed once per config version (rebuilt when the
// config pointer changes: a reload).
type Base[S any] struct {
	*Engine
	parse func(*inventory.Config) []S
	cur   atomic.Pointer[subnets[S]]
}

type subnets[S any] struct {
	cfg  *inventory.Config
	subs []S
}

// NewBase makes a family's engine; parse reads its subnets from a config.
func NewBase[S any](family int, o Options, parse func(*inventory.Config) []S) (*Base[S], error) {
	o.Family = family
	e, err := New(o)
	if err != nil {
		return nil, err
	}
	return &Base[S]{Engine: e, parse: parse}, nil
}

// Subnets are the subnets of the config in force.
func (b *Base[S]) Subnets() []S {
	cfg := b.Config()
	if d := b.cur.Load(); d != nil && d.cfg == cfg {
		return d.subs
	}
	d := &subnets[S]{cfg, b.parse(cfg)}
	b.cur.Store(d)
	return d.subs
}

// SelectSubnet picks the subnet a client is on: when relayed, the one
// holding the relay's address (giaddr, or the link-address of the relay
// nearest the client: seed 003's VLANs behind firewalls); else the one
// holding an address of the interface the packet came in on.
func SelectSubnet[S any](subs []S, prefix func(*S) netip.Prefix, relayed bool, relay netip.Addr, local []netip.Prefix) *S {
	for i := range subs {
		p := prefix(&subs[i])
		if relayed {
			if relay.IsValid() && p.Contains(relay) {
				return &subs[i]
			}
			continue
		}
		for _, l := range local {
			if p.Contains(l.Addr()) {
				return &subs[i]
			}
		}
	}
	return nil
}

// Net is what every configured subnet has: its prefix and its dynamic
// pool (invalid when it has reservations only).
type Net struct {
	Prefix      netip.Prefix
	First, Last netip.Addr
}

// ParseNet reads a subnet's prefix and pool ("first-last") as configured.
// The config was validated on load, so ok is false only for an entry of
// the other family; a pool that does not parse or leaves the prefix is
// left out.
func ParseNet(family int, prefix, pool string) (n Net, ok bool) {
	p, err := netip.ParsePrefix(prefix)
	if err != nil || (family == 4) != p.Addr().Is4() {
		return n, false
	}
	n.Prefix = p.Masked()
	parse := inventory.ParsePool
	if family == 6 {
		parse = inventory.ParsePool6
	}
	if pool != "" {
		if lo, hi, err := parse(pool); err == nil && p.Contains(lo) && p.Contains(hi) {
			n.First, n.Last = lo, hi
		}
	}
	return n, true
}

// Interface reads a served interface: its index and hardware address, and
// its networks of the family (IPv6: global ones only); the first one's
// address is the server's own there (its identifier, the boot server).
// An interface with none is an error that says why the server needs one.
func Interface(name string, family int, why string) (*net.Interface, []netip.Prefix, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, nil, fmt.Errorf("interface %s: %w", name, err)
	}
	var nets []netip.Prefix
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		ip = ip.Unmap()
		if !ok || (family == 4) != ip.Is4() || (family == 6 && !ip.IsGlobalUnicast()) {
			continue
		}
		if family == 4 && ones > 32 {
			ones -= 96
		}
		nets = append(nets, netip.PrefixFrom(ip, ones))
	}
	if len(nets) == 0 {
		return nil, nil, fmt.Errorf("interface %s has no IPv%d address that fits: %s", name, family, why)
	}
	return ifi, nets, nil
}

// IPs are the configured addresses of the family (DNS servers, routers),
// as the DHCP libraries take them.
func IPs(ss []string, family int) []net.IP {
	var out []net.IP
	for _, s := range ss {
		if a, err := netip.ParseAddr(s); err == nil && a.Is4() == (family == 4) {
			out = append(out, a.AsSlice())
		}
	}
	return out
}
