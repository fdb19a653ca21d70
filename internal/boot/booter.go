package boot

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Booter gathers Decide's inputs: it identifies the machine (identity.go),
// from the host index rather than the store, and adds the current config.
type Booter struct {
	// Store is read to fill the index and, through Leases, to find who
	// holds an address.
	Store IndexStore
	// Leases are the DHCP leases kickstand committed (nil: none).
	Leases Leases
	// Config returns the config in force; it changes on reload.
	Config func() *inventory.Config
	Now    func() time.Time
	// Extras lets later stages (overlay initrds, syslog) add initrds and
	// kernel arguments for a target without the decision knowing them.
	Extras func(t *Target, f Facts) (initrds, args []string, explain []string)

	Index    Index
	Bindings Bindings
	loadMu   sync.Mutex
}

// NewBooter returns a Booter over a store that also holds the leases.
func NewBooter(st interface {
	IndexStore
	Leases
}, config func() *inventory.Config) *Booter {
	return &Booter{Store: st, Leases: st, Config: config}
}

// ensureIndex loads the index on first use.
func (b *Booter) ensureIndex(ctx context.Context) error {
	if b.Index.isLoaded() {
		return nil
	}
	b.loadMu.Lock()
	defer b.loadMu.Unlock()
	if b.Index.isLoaded() {
		return nil
	}
	return b.Reload(ctx)
}

// Reload re-reads the whole index (after a file sync).
func (b *Booter) Reload(ctx context.Context) error {
	return b.Index.Load(ctx, b.Store, b.duids())
}

// Follow applies writes made by another server sharing the store.
func (b *Booter) Follow(ctx context.Context) error {
	return b.Index.Follow(ctx, b.Store, b.duids())
}

func (b *Booter) duids() []inventory.DUIDReservation {
	if b.Config == nil {
		return nil
	}
	return b.Config().DHCP6.DUIDs
}

func (b *Booter) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

// BootSpec answers "what does this machine boot now".
func (b *Booter) BootSpec(ctx context.Context, f Facts) (Plan, error) {
	in, f, err := b.Inputs(ctx, f)
	if err != nil {
		return Plan{}, err
	}
	return Decide(f, in), nil
}

// Inputs identifies the machine and looks up everything Decide needs. It
// returns the facts completed with what identification proved (the
// machine's MAC, from its lease).
func (b *Booter) Inputs(ctx context.Context, f Facts) (Inputs, Facts, error) {
	cfg := b.Config()
	in := b.base(cfg, f)
	id, err := b.Identify(ctx, f)
	if err != nil {
		return in, f, err
	}
	if f.MAC == "" {
		f.MAC = id.MAC
	}
	in.Proof = id.Proof
	if id.Host != nil {
		t, err := b.target(id.Host)
		if err != nil {
			return in, f, err
		}
		in.Target = t
	}
	if in.Target == nil || in.Target.Record.State == inventory.StateMenu {
		in.MenuItems = b.menuItems(cfg)
	}
	return b.withExtras(in, f), f, nil
}

// InputsFor is Inputs for a target already known (a kickstart fetched by
// its token, a preview): no identification and no menu.
func (b *Booter) InputsFor(f Facts, t *Target) Inputs {
	in := b.base(b.Config(), f)
	in.Target = t
	return b.withExtras(in, f)
}

// base is what every decision's inputs share: time, menu, server, settings.
func (b *Booter) base(cfg *inventory.Config, f Facts) Inputs {
	in := Inputs{Menu: cfg.Menu, Now: b.now(), Server: serverFor(cfg, f), RouteWait: time.Duration(cfg.Server.RouteWait)}
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

// target adds a host's profile and distro.
func (b *Booter) target(r *inventory.HostRecord) (*Target, error) {
	p := b.Index.Profile(r.Profile)
	if p == nil {
		return nil, fmt.Errorf("host %s: profile %s: %w", r.Name, r.Profile, store.ErrNotFound)
	}
	d := b.Index.Distro(p.Distro)
	if d == nil {
		return nil, fmt.Errorf("host %s: profile %s: distro %s: %w", r.Name, p.Name, p.Distro, store.ErrNotFound)
	}
	return &Target{Record: r, Profile: p, Distro: d}, nil
}

// TargetByName is Target for a host named on the command line or found by
// its build token.
func (b *Booter) TargetByName(ctx context.Context, name string) (*Target, error) {
	if err := b.ensureIndex(ctx); err != nil {
		return nil, err
	}
	r := b.Index.Host(name)
	if r == nil {
		return nil, fmt.Errorf("host %s: %w", name, store.ErrNotFound)
	}
	return b.target(r)
}

// menuItems are the hosts the menu offers: those installing, narrowed to
// menu.hosts when set.
func (b *Booter) menuItems(cfg *inventory.Config) []Target {
	hosts := b.Index.Installing()
	slices.SortFunc(hosts, func(a, b inventory.HostRecord) int { return strings.Compare(a.Name, b.Name) })
	var out []Target
	for i := range hosts {
		h := &hosts[i]
		if len(cfg.Menu.Hosts) > 0 && !slices.Contains(cfg.Menu.Hosts, h.Name) {
			continue
		}
		t, err := b.target(h)
		if err != nil {
			continue // a broken live host must not take the menu down
		}
		out = append(out, *t)
	}
	return out
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
