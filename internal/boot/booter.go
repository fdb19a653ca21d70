package boot

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Booter gathers Decide's inputs from the store and the current config.
type Booter struct {
	Store store.Store
	// Config returns the config in force; it changes on reload.
	Config func() *inventory.Config
	Now    func() time.Time
	// Extras lets later stages (overlay initrds, syslog) add initrds and
	// kernel arguments for a target without the decision knowing them.
	Extras func(t *Target, f Facts) (initrds, args []string, explain []string)
}

// BootSpec answers "what does this machine boot now".
func (b *Booter) BootSpec(ctx context.Context, f Facts) (Plan, error) {
	in, err := b.Inputs(ctx, f)
	if err != nil {
		return Plan{}, err
	}
	p := Decide(f, in)
	return p, nil
}

// Inputs looks up everything Decide needs for these facts.
func (b *Booter) Inputs(ctx context.Context, f Facts) (Inputs, error) {
	cfg := b.Config()
	in := b.base(cfg, f)
	rec, err := b.identify(ctx, f)
	if err != nil {
		return in, err
	}
	if f.Chosen != "" && (rec == nil || rec.State == inventory.StateMenu) {
		items, err := b.menuItems(ctx, cfg, f)
		if err != nil {
			return in, err
		}
		for i := range items {
			if items[i].Record.Name == f.Chosen {
				in.Target = &items[i]
				return b.withExtras(in, f), nil
			}
		}
	}
	if rec != nil {
		t, err := b.target(ctx, rec)
		if err != nil {
			return in, err
		}
		in.Target = t
	}
	if in.Target == nil || in.Target.Record.State == inventory.StateMenu {
		if in.MenuItems, err = b.menuItems(ctx, cfg, f); err != nil {
			return in, err
		}
	}
	return b.withExtras(in, f), nil
}

// InputsFor is Inputs for a target already known (a kickstart fetched by
// its token): no lookup and no menu, which would read every host.
func (b *Booter) InputsFor(f Facts, t *Target) Inputs {
	in := b.base(b.Config(), f)
	in.Target = t
	return b.withExtras(in, f)
}

// base is what every decision's inputs share: time, menu, server, settings.
func (b *Booter) base(cfg *inventory.Config, f Facts) Inputs {
	now := time.Now()
	if b.Now != nil {
		now = b.Now()
	}
	in := Inputs{Menu: cfg.Menu, Now: now, Server: serverFor(cfg, f), RouteWait: time.Duration(cfg.Server.RouteWait)}
	if cfg.Syslog.Enabled {
		if i := strings.LastIndex(cfg.Syslog.Listen, ":"); i >= 0 {
			in.SyslogPort, _ = strconv.Atoi(cfg.Syslog.Listen[i+1:])
		}
	}
	return in
}

func (b *Booter) withExtras(in Inputs, f Facts) Inputs {
	if b.Extras != nil && in.Target != nil {
		in.ExtraInitrds, in.ExtraArgs, _ = b.Extras(in.Target, f)
	}
	return in
}

// identify finds the host by SMBIOS UUID, then MAC, then client address:
// the UUID survives NIC swaps, and the address is all a PXELINUX or GRUB
// config request over TFTP may carry.
func (b *Booter) identify(ctx context.Context, f Facts) (*inventory.HostRecord, error) {
	try := func(r *inventory.HostRecord, err error) (*inventory.HostRecord, error) {
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return r, err
	}
	if f.UUID != "" {
		if r, err := try(b.Store.HostByUUID(ctx, f.UUID)); r != nil || err != nil {
			return r, err
		}
	}
	if f.MAC != "" {
		if r, err := try(b.Store.HostByMAC(ctx, f.MAC)); r != nil || err != nil {
			return r, err
		}
	}
	if f.ClientIP.IsValid() {
		return try(b.Store.HostByAddr(ctx, f.ClientIP))
	}
	return nil, nil
}

// Target loads a host's profile and distro.
func (b *Booter) target(ctx context.Context, r *inventory.HostRecord) (*Target, error) {
	p, err := b.Store.Profile(ctx, r.Profile)
	if err != nil {
		return nil, fmt.Errorf("host %s: %w", r.Name, err)
	}
	d, err := b.Store.Distro(ctx, p.Distro)
	if err != nil {
		return nil, fmt.Errorf("host %s: profile %s: %w", r.Name, p.Name, err)
	}
	return &Target{Record: r, Profile: p, Distro: d}, nil
}

// TargetByName is Target for a host named on the command line.
func (b *Booter) TargetByName(ctx context.Context, name string) (*Target, error) {
	r, err := b.Store.Host(ctx, name)
	if err != nil {
		return nil, err
	}
	return b.target(ctx, r)
}

func (b *Booter) menuItems(ctx context.Context, cfg *inventory.Config, f Facts) ([]Target, error) {
	hosts, err := b.Store.Hosts(ctx)
	if err != nil {
		return nil, err
	}
	var out []Target
	for i := range hosts {
		h := &hosts[i]
		offered := h.State == inventory.StateInstall
		if len(cfg.Menu.Hosts) > 0 {
			offered = offered && slices.Contains(cfg.Menu.Hosts, h.Name)
		}
		if !offered {
			continue
		}
		t, err := b.target(ctx, h)
		if err != nil {
			continue // a broken live host must not take the menu down
		}
		out = append(out, *t)
	}
	return out, nil
}

// serverFor is how this client reaches kickstand: the configured addresses,
// else the address the request arrived on.
func serverFor(cfg *inventory.Config, f Facts) Server {
	s := Server{Port: cfg.Server.HTTPPort}
	s.V4, _ = netip.ParseAddr(cfg.Server.AddressV4)
	s.V6, _ = netip.ParseAddr(cfg.Server.AddressV6)
	if ip := f.ServerIP.Unmap(); ip.IsValid() && !ip.IsUnspecified() {
		if ip.Is4() && !s.V4.IsValid() {
			s.V4 = ip
		}
		if ip.Is6() && !s.V6.IsValid() {
			s.V6 = ip.WithZone("")
		}
	}
	return s
}
