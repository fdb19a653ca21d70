package install

import (
	"context"
	"fmt"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// AssignDiscovered turns a discovered machine into a live host in install:
// `host add --from-discovered`, `discovered assign`, the UI's Assign
// button, the API and discovery rules all come here. h is the new host as
// far as the caller knows it (at least name and profile); the machine's
// MAC, and its SMBIOS UUID unless h has one, are added, and the host is
// checked by the file's rules as `host add` checks one. The waiting
// machine's next poll gets the install, without a reboot. The new host's
// timeline starts with what the machine reported and the state change,
// saying who assigned it.
func (s *Service) AssignDiscovered(ctx context.Context, mac string, h inventory.Host, by Cause) (*inventory.HostRecord, error) {
	norm := inventory.NormalMAC(mac)
	if norm == "" {
		return nil, &InvalidError{fmt.Errorf("assign %q: not a MAC", mac)}
	}
	d, err := s.d.Store.DiscoveredMachine(ctx, norm)
	if err != nil {
		return nil, fmt.Errorf("assign %s: %w", norm, err)
	}
	h.MACs = []string{norm}
	if u := inventory.NormalUUID(d.UUID); h.UUID == "" && inventory.ValidUUID(u) && u != "00000000-0000-0000-0000-000000000000" {
		h.UUID = u
	}
	if h.Netboot == "" {
		h.Netboot = inventory.StateLocal // where it goes once built
	}
	known, err := s.Known(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.d.Config().CheckHost(&h, known); err != nil {
		return nil, &InvalidError{err}
	}
	t := store.Transition{State: inventory.StateInstall}
	t.Token, t.Expires = s.mint()
	rec, err := s.d.Store.AssignDiscovered(ctx, store.Assignment{MAC: norm, Host: h, Transition: t, Now: s.now()})
	if err != nil {
		return nil, s.fileOwned("host", h.Name, err)
	}
	s.d.Booter.Index.Put(rec)
	now := s.now()
	s.record(ctx,
		store.Event{Host: h.Name, At: now, Kind: "discovery",
			Detail: fmt.Sprintf("assigned from discovered machine %s (%s %s, serial %q, asset %q, uuid %s), reported from %s", norm, d.Manufacturer, d.Product, d.Serial, d.Asset, orNone(d.UUID), d.Addr),
			Data: map[string]any{"mac": norm, "manufacturer": d.Manufacturer, "product": d.Product, "serial": d.Serial,
				"asset": d.Asset, "uuid": d.UUID, "addr": d.Addr, "platform": d.Platform, "buildarch": d.BuildArch}},
		stateEvent(h.Name, "", inventory.StateInstall, by, "", now))
	s.d.Log.InfoContext(ctx, "discovered machine assigned", "mac", norm, "host", h.Name, "profile", h.Profile, "by", by.String())
	return rec, nil
}
