package install

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// InvalidError is a live object that fails the file's checks; its message
// is the checks' (`host web1: ipv4: ...`). Transports answer it as the
// caller's mistake (400, exit 1 with the message).
type InvalidError struct{ Err error }

func (e *InvalidError) Error() string { return e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// fileOwned says, in the words an operator needs, that an object belongs
// to the file (the README's ownership rules).
func (s *Service) fileOwned(kind, name string, err error) error {
	if !errors.Is(err, store.ErrFileOwned) {
		return err
	}
	file := s.d.Config().Path
	if file == "" {
		file = "the config file"
	}
	return &store.Refused{Sentinel: store.ErrFileOwned, Msg: fmt.Sprintf("%s %s is declared in %s, which owns it: edit it there, not live", kind, name, file)}
}

// knownStore is what Known and LiveNames read.
type knownStore interface {
	Origins(context.Context) (map[string]string, map[string]string, error)
	Profiles(context.Context) ([]inventory.Profile, error)
}

// LiveNames are the live profiles and distros in a store: what the file
// may reference beyond its own (inventory.Loader.Known).
func LiveNames(ctx context.Context, st knownStore) (inventory.Known, error) {
	return known(ctx, st, true)
}

// Known returns the names of every profile and distro in the store.
func (s *Service) Known(ctx context.Context) (inventory.Known, error) {
	return known(ctx, s.d.Store, false)
}

func known(ctx context.Context, st knownStore, liveOnly bool) (inventory.Known, error) {
	ps, ds, err := st.Origins(ctx)
	if err != nil {
		return inventory.Known{}, fmt.Errorf("read profiles and distros: %w", err)
	}
	// The live profiles' definitions (a handful), for the login check of
	// the hosts on them.
	specs := map[string]*inventory.Profile{}
	all, err := st.Profiles(ctx)
	if err != nil {
		return inventory.Known{}, fmt.Errorf("read profiles: %w", err)
	}
	for i := range all {
		if ps[all[i].Name] == inventory.OriginLive {
			specs[all[i].Name] = &all[i]
		}
	}
	pick := func(m map[string]string) map[string]bool {
		out := map[string]bool{}
		for n, o := range m {
			if !liveOnly || o == inventory.OriginLive {
				out[n] = true
			}
		}
		return out
	}
	return inventory.Known{Profiles: pick(ps), Distros: pick(ds), ProfileSpecs: specs}, nil
}

// AddHost creates a live host, checked by the file's rules, in its
// netboot state (default local; install mints a build token).
func (s *Service) AddHost(ctx context.Context, h inventory.Host, by Cause) (*inventory.HostRecord, error) {
	known, err := s.Known(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.d.Config().CheckHost(&h, known); err != nil {
		return nil, &InvalidError{err}
	}
	t := store.Transition{State: h.Netboot}
	if t.State == inventory.StateInstall {
		t.Token, t.Expires = s.mint()
	}
	rec, err := s.d.Store.CreateHost(ctx, h, t)
	if err != nil {
		return nil, s.fileOwned("host", h.Name, err)
	}
	s.d.Booter.Index.Put(rec)
	s.record(ctx, inventoryEvent(h.Name, "host "+h.Name, "added", nil, by, s), stateEvent(h.Name, "", rec.State, by, "", s.now()))
	s.d.Log.InfoContext(ctx, "live host added", "host", h.Name, "state", rec.State, "by", by.String())
	return rec, nil
}

// EditHost replaces a live host's definition. Its state and token stay,
// unless the edit changes its netboot value: then that is a state change,
// as `host set-state` would make it.
func (s *Service) EditHost(ctx context.Context, h inventory.Host, by Cause) (*inventory.HostRecord, error) {
	old, err := s.d.Store.Host(ctx, h.Name)
	if err != nil {
		return nil, fmt.Errorf("edit host %s: %w", h.Name, err)
	}
	if old.Origin == inventory.OriginFile {
		return nil, s.fileOwned("host", h.Name, store.ErrFileOwned)
	}
	known, err := s.Known(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.d.Config().CheckHost(&h, known); err != nil {
		return nil, &InvalidError{err}
	}
	rec, err := s.d.Store.UpdateHost(ctx, h)
	if err != nil {
		return nil, s.fileOwned("host", h.Name, err)
	}
	s.d.Booter.Index.Put(rec)
	s.record(ctx, inventoryEvent(h.Name, "host "+h.Name, "edited", changedFields(old.Host, h), by, s))
	s.d.Log.InfoContext(ctx, "live host edited", "host", h.Name, "by", by.String())
	if h.Netboot != old.Netboot {
		return s.transition(ctx, h.Name, h.Netboot, by, "")
	}
	return rec, nil
}

// RemoveHost removes a live host. Its timeline stays, ending with the
// removal.
func (s *Service) RemoveHost(ctx context.Context, name string, by Cause) error {
	old, err := s.d.Store.DeleteHost(ctx, name)
	if err != nil {
		return s.fileOwned("host", name, err)
	}
	s.d.Booter.Index.Remove(name)
	s.record(ctx, inventoryEvent(name, "host "+name, "removed", map[string]any{"state": old.State}, by, s))
	s.d.Log.InfoContext(ctx, "live host removed", "host", name, "state", old.State, "by", by.String())
	return nil
}

// SaveProfile creates (create) or replaces a live profile, checked by the
// file's rules against the distros there are.
func (s *Service) SaveProfile(ctx context.Context, p inventory.Profile, create bool, by Cause) error {
	known, err := s.Known(ctx)
	if err != nil {
		return err
	}
	if err := s.d.Config().CheckProfile(&p, known); err != nil {
		return &InvalidError{err}
	}
	if !create {
		if err := s.loginsKept(ctx, &p); err != nil {
			return err
		}
	}
	if err := s.d.Store.PutProfile(ctx, p, create); err != nil {
		return s.fileOwned("profile", p.Name, err)
	}
	return s.specChanged(ctx, "profile "+p.Name, map[bool]string{true: "added", false: "edited"}[create], by)
}

// loginsKept refuses a profile edit that would leave a host of it with
// the built-in kickstart and no way to log in (its kickstart or login
// vars taken away), as the file's check refuses such a host.
func (s *Service) loginsKept(ctx context.Context, p *inventory.Profile) error {
	if p.Kickstart != "" {
		return nil // a template of the operator's own is theirs
	}
	hosts, err := s.d.Store.Hosts(ctx)
	if err != nil {
		return err
	}
	var locked []string
	for i := range hosts {
		h := &hosts[i]
		if h.Profile == p.Name && !h.CanLogIn(p) {
			locked = append(locked, h.Name)
		}
	}
	if len(locked) == 0 {
		return nil
	}
	if len(locked) > 10 {
		locked = append(locked[:10], fmt.Sprintf("and %d more", len(locked)-10))
	}
	return &InvalidError{fmt.Errorf("profile %s: vars: nobody could log into host %s: the built-in kickstart locks root; keep vars.rootpw or vars.ssh_keys here, or set them on the hosts", p.Name, strings.Join(locked, ", "))}
}

// SaveDistro creates (create) or replaces a live distro.
func (s *Service) SaveDistro(ctx context.Context, d inventory.Distro, create bool, by Cause) error {
	if err := s.d.Config().CheckDistro(&d); err != nil {
		return &InvalidError{err}
	}
	if err := s.d.Store.PutDistro(ctx, d, create); err != nil {
		return s.fileOwned("distro", d.Name, err)
	}
	return s.specChanged(ctx, "distro "+d.Name, map[bool]string{true: "added", false: "edited"}[create], by)
}

// RemoveProfile removes a live profile no host uses.
func (s *Service) RemoveProfile(ctx context.Context, name string, by Cause) error {
	if err := s.d.Store.DeleteProfile(ctx, name); err != nil {
		return s.fileOwned("profile", name, err)
	}
	return s.specChanged(ctx, "profile "+name, "removed", by)
}

// RemoveDistro removes a live distro no profile uses (`distro rm`).
func (s *Service) RemoveDistro(ctx context.Context, name string, by Cause) error {
	if err := s.d.Store.DeleteDistro(ctx, name); err != nil {
		return s.fileOwned("distro", name, err)
	}
	return s.specChanged(ctx, "distro "+name, "removed", by)
}

// specChanged records a profile or distro change (on no host's timeline:
// it is in the event list and stream) and has the boot decision see it.
func (s *Service) specChanged(ctx context.Context, object, what string, by Cause) error {
	s.record(ctx, inventoryEvent("", object, what, nil, by, s))
	s.d.Log.InfoContext(ctx, "live "+object+" "+what, "by", by.String())
	return s.d.Booter.Index.Follow(ctx, s.d.Booter.Store, s.d.Config().DHCP6.DUIDs)
}

// inventoryEvent is a live object's change on the timeline, with who made it.
func inventoryEvent(host, object, what string, data map[string]any, by Cause, s *Service) store.Event {
	d := map[string]any{"object": object, "change": what, "by": by.Kind}
	if by.Who != "" {
		d["who"] = by.Who
	}
	maps.Copy(d, data)
	detail := fmt.Sprintf("%s %s live (by %s)", object, what, by)
	if f, ok := data["fields"].([]string); ok && len(f) > 0 {
		detail = fmt.Sprintf("%s %s live: %s (by %s)", object, what, strings.Join(f, ", "), by)
	}
	return store.Event{Host: host, At: s.now(), Kind: "inventory", Detail: detail, Data: d}
}

// changedFields names what an edit changed, for the timeline.
func changedFields(a, b inventory.Host) map[string]any {
	var f []string
	add := func(name string, same bool) {
		if !same {
			f = append(f, name)
		}
	}
	add("macs", slices.Equal(a.MACs, b.MACs))
	add("uuid", a.UUID == b.UUID)
	add("ipv4", a.IPv4 == b.IPv4)
	add("gateway4", a.Gateway4 == b.Gateway4)
	add("ipv6", a.IPv6 == b.IPv6)
	add("gateway6", a.Gateway6 == b.Gateway6)
	add("nameservers", slices.Equal(a.Nameservers, b.Nameservers))
	add("ntp", slices.Equal(a.NTP, b.NTP))
	add("timezone", a.Timezone == b.Timezone)
	add("interface", a.Interface == b.Interface)
	add("platform", a.Platform == b.Platform)
	add("profile", a.Profile == b.Profile)
	add("netboot", a.Netboot == b.Netboot)
	add("vars", maps.Equal(a.Vars, b.Vars))
	return map[string]any{"fields": f}
}

// RegisterDistro registers an imported distro and its default profile
// (`distro import`), both or neither; a name the file declares is refused.
func (s *Service) RegisterDistro(ctx context.Context, d inventory.Distro, p *inventory.Profile, by Cause) error {
	if err := s.d.Store.RegisterDistro(ctx, d, p); err != nil {
		return err
	}
	if p != nil {
		s.record(ctx, inventoryEvent("", "profile "+p.Name, "imported", nil, by, s))
	}
	return s.specChanged(ctx, "distro "+d.Name, "imported", by)
}

// Registrar is RegisterDistro for one cause, for distro.Importer.
func (s *Service) Registrar(by Cause) func(context.Context, inventory.Distro, *inventory.Profile) error {
	return func(ctx context.Context, d inventory.Distro, p *inventory.Profile) error {
		return s.RegisterDistro(ctx, d, p, by)
	}
}
