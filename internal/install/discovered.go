package install

import (
	"context"
	"errors"
	"fmt"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// ErrInvalid marks a request that names something wrong (a bad host name,
// an unknown profile): 400 in the API, not 500.
var ErrInvalid = errors.New("invalid")

// AssignDiscovered turns a discovered machine into a live host in install
// under name and profile: `host add --from-discovered`, `discovered
// assign`, the UI's Assign button, the API and discovery rules all come
// here. The waiting machine's next poll gets the install (no reboot). The
// new host's timeline starts with what the machine reported and the state
// change, saying who assigned it.
func (s *Service) AssignDiscovered(ctx context.Context, mac, name, profile string, by Cause) (*inventory.HostRecord, error) {
	norm := inventory.NormalMAC(mac)
	switch {
	case norm == "":
		return nil, fmt.Errorf("assign %q: not a MAC: %w", mac, ErrInvalid)
	case !inventory.ValidHostName(name):
		return nil, fmt.Errorf("assign %s: %q is not a valid host name: %w", norm, name, ErrInvalid)
	}
	if p, err := s.d.Booter.Profile(ctx, profile); err != nil {
		return nil, fmt.Errorf("assign %s: %w", norm, err)
	} else if p == nil {
		return nil, fmt.Errorf("assign %s: unknown profile %q: %w", norm, profile, ErrInvalid)
	}
	d, err := s.d.Store.DiscoveredMachine(ctx, norm)
	if err != nil {
		return nil, fmt.Errorf("assign %s: %w", norm, err)
	}
	h := inventory.Host{Name: name, MACs: []string{norm}, Profile: profile,
		Platform: inventory.PlatformBaremetal, Netboot: inventory.StateLocal}
	if u := inventory.NormalUUID(d.UUID); inventory.ValidUUID(u) && u != "00000000-0000-0000-0000-000000000000" {
		h.UUID = u
	}
	t := store.Transition{State: inventory.StateInstall}
	t.Token, t.Expires = s.mint()
	rec, err := s.d.Store.AssignDiscovered(ctx, store.Assignment{MAC: norm, Host: h, Transition: t, Now: s.now()})
	if err != nil {
		return nil, err
	}
	s.d.Booter.Index.Put(rec)
	now := s.now()
	s.record(ctx,
		store.Event{Host: name, At: now, Kind: "discovery",
			Detail: fmt.Sprintf("assigned from discovered machine %s (%s %s, serial %q, asset %q, uuid %s), reported from %s", norm, d.Manufacturer, d.Product, d.Serial, d.Asset, orNone(d.UUID), d.Addr),
			Data: map[string]any{"mac": norm, "manufacturer": d.Manufacturer, "product": d.Product, "serial": d.Serial,
				"asset": d.Asset, "uuid": d.UUID, "addr": d.Addr, "platform": d.Platform, "buildarch": d.BuildArch}},
		stateEvent(name, "", inventory.StateInstall, by, "", now))
	s.d.Log.InfoContext(ctx, "discovered machine assigned", "mac", norm, "host", name, "profile", profile, "by", by.String())
	return rec, nil
}
