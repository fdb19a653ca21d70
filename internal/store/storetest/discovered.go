package storetest

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

func (f *Fake) ReportDiscovered(_ context.Context, d store.Discovered, lim store.DiscoveryLimits) (bool, error) {
	mac := inventory.NormalMAC(d.MAC)
	if mac == "" {
		return false, fmt.Errorf("report discovered machine: %q is not a MAC", d.MAC)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.found == nil {
		f.found = map[string]store.Discovered{}
	}
	if old, ok := f.found[mac]; ok {
		old.LastSeen, old.Reports = d.LastSeen, old.Reports+1
		if old.Host == "" {
			d.MAC, d.FirstSeen, d.Reports, d.Host = mac, old.FirstSeen, old.Reports, ""
			old = d
		}
		f.found[mac] = old
		return false, nil
	}
	if len(f.found) >= lim.Max {
		for m, o := range f.found {
			if o.LastSeen.Before(lim.StaleBefore) {
				delete(f.found, m)
			}
		}
		if len(f.found) >= lim.Max {
			return false, fmt.Errorf("report discovered machine %s: %w", mac, store.ErrFull)
		}
	}
	d.MAC, d.FirstSeen, d.Reports, d.Host = mac, d.LastSeen, 1, ""
	f.found[mac] = d
	return true, nil
}

func (f *Fake) DiscoveredMachines(context.Context) ([]store.Discovered, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Discovered
	for _, d := range f.found {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].MAC < out[j].MAC })
	return out, nil
}

func (f *Fake) DiscoveredMachine(_ context.Context, mac string) (*store.Discovered, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.found[inventory.NormalMAC(mac)]
	if !ok {
		return nil, fmt.Errorf("discovered machine %s: %w", mac, store.ErrNotFound)
	}
	return &d, nil
}

func (f *Fake) AssignDiscovered(_ context.Context, a store.Assignment) (*inventory.HostRecord, error) {
	if err := a.Transition.Check(); err != nil {
		return nil, fmt.Errorf("assign %s: %w", a.MAC, err)
	}
	mac := inventory.NormalMAC(a.MAC)
	f.mu.Lock()
	defer f.mu.Unlock()
	d, ok := f.found[mac]
	switch {
	case !ok:
		return nil, fmt.Errorf("no discovered machine has MAC %s: %w", mac, store.ErrNotFound)
	case d.Host != "":
		return nil, fmt.Errorf("machine %s is already assigned to host %s: %w", mac, d.Host, store.ErrExists)
	}
	if err := store.CheckLiveChange(f.hostOrigin(a.Host.Name), true); err != nil {
		return nil, fmt.Errorf("assign %s: %w", mac, err)
	}
	if err := f.taken(a.Host); err != nil {
		return nil, fmt.Errorf("assign %s: %w", mac, err)
	}
	rec := inventory.HostRecord{Host: a.Host, State: a.Transition.State, Token: a.Transition.Token,
		TokenExpires: a.Transition.Expires, Origin: inventory.OriginLive, UpdatedAt: a.Now}
	f.hosts[a.Host.Name] = &fakeHost{rec: rec, declared: a.Host.Netboot}
	d.Host = a.Host.Name
	f.found[mac] = d
	r := rec
	return &r, nil
}

func (Broken) ReportDiscovered(context.Context, store.Discovered, store.DiscoveryLimits) (bool, error) {
	return false, ErrBroken
}
func (Broken) DiscoveredMachines(context.Context) ([]store.Discovered, error) { return nil, ErrBroken }
func (Broken) DiscoveredMachine(context.Context, string) (*store.Discovered, error) {
	return nil, ErrBroken
}
func (Broken) AssignDiscovered(context.Context, store.Assignment) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}

// RunDiscovered checks the discovered-machine contract: reports refresh by
// MAC, the cap holds (stale machines make room), an assignment creates a
// live host in install and cannot be made twice.
func RunDiscovered(t *testing.T, open Opener) {
	ctx := context.Background()
	st, _ := open(t)
	t0 := time.UnixMilli(1_800_000_000_000)
	lim := store.DiscoveryLimits{Max: 2, StaleBefore: t0.Add(-time.Hour)}
	rep := func(mac, serial string, at time.Time) (bool, error) {
		return st.ReportDiscovered(ctx, store.Discovered{MAC: mac, Serial: serial, Proof: "lease", Addr: "192.0.2.50", LastSeen: at}, lim)
	}
	if c, err := rep("52:54:00:AA:00:01", "s1", t0); err != nil || !c {
		t.Fatalf("first report: created=%v err=%v", c, err)
	}
	if c, err := rep("52:54:00:aa:00:01", "s1b", t0.Add(time.Minute)); err != nil || c {
		t.Fatalf("second report of one MAC: created=%v err=%v", c, err)
	}
	if _, err := rep("52:54:00:aa:00:02", "s2", t0); err != nil {
		t.Fatal(err)
	}
	if _, err := rep("52:54:00:aa:00:03", "s3", t0); !errors.Is(err, store.ErrFull) {
		t.Fatalf("past the cap: %v, want ErrFull", err)
	}
	d, err := st.DiscoveredMachine(ctx, "52:54:00:aa:00:01")
	if err != nil || d.Serial != "s1b" || d.Reports != 2 || !d.FirstSeen.Equal(t0) || !d.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Fatalf("refreshed machine = %+v, %v", d, err)
	}
	// Stale machines make room for a new one.
	lim.StaleBefore = t0.Add(30 * time.Second)
	if c, err := rep("52:54:00:aa:00:03", "s3", t0.Add(2*time.Minute)); err != nil || !c {
		t.Fatalf("report with a stale machine to drop: created=%v err=%v", c, err)
	}
	ds, _ := st.DiscoveredMachines(ctx)
	if len(ds) != 2 || ds[0].MAC != "52:54:00:aa:00:01" || ds[1].MAC != "52:54:00:aa:00:03" {
		t.Fatalf("after the stale one went: %+v", ds)
	}
	exp := t0.Add(time.Hour)
	a := store.Assignment{MAC: "52:54:00:aa:00:03", Now: t0,
		Host:       inventory.Host{Name: "rack1-s3", MACs: []string{"52:54:00:aa:00:03"}, Profile: "p", Netboot: inventory.StateLocal, Platform: inventory.PlatformBaremetal},
		Transition: store.Transition{State: inventory.StateInstall, Token: "tok-s3", Expires: exp}}
	rec, err := st.AssignDiscovered(ctx, a)
	if err != nil || rec.Origin != inventory.OriginLive || rec.State != inventory.StateInstall || rec.Token != "tok-s3" {
		t.Fatalf("assign: %+v, %v", rec, err)
	}
	if h, err := st.HostByMAC(ctx, "52:54:00:aa:00:03"); err != nil || h.Name != "rack1-s3" {
		t.Fatalf("the new host by MAC: %+v, %v", h, err)
	}
	if _, err := st.AssignDiscovered(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("second assignment: %v, want ErrExists", err)
	}
	a.MAC, a.Host.MACs = "52:54:00:aa:00:01", []string{"52:54:00:aa:00:01"}
	if _, err := st.AssignDiscovered(ctx, a); !errors.Is(err, store.ErrExists) {
		t.Fatalf("assignment under a taken name: %v, want ErrExists", err)
	}
	a.MAC = "52:54:00:aa:00:09"
	if _, err := st.AssignDiscovered(ctx, a); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("assignment of an unknown MAC: %v, want ErrNotFound", err)
	}
	if d, _ := st.DiscoveredMachine(ctx, "52:54:00:aa:00:03"); d == nil || d.Host != "rack1-s3" {
		t.Fatalf("assigned machine = %+v", d)
	}
}
