package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

func (f *Fake) hostOrigin(name string) string {
	if h, ok := f.hosts[name]; ok {
		return h.rec.Origin
	}
	return ""
}

func (f *Fake) taken(h inventory.Host) error {
	for n, o := range f.hosts {
		if n == h.Name {
			continue
		}
		for _, m := range h.MACs {
			if slices.Contains(o.rec.MACs, m) {
				return &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("MAC %s is also used by host %s", m, n)}
			}
		}
		if h.UUID != "" && o.rec.UUID == h.UUID {
			return &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("UUID %s is also used by host %s", h.UUID, n)}
		}
		for _, a := range []string{h.IPv4, h.IPv6} {
			if a != "" && (addrOf(a) == addrOf(o.rec.IPv4) || addrOf(a) == addrOf(o.rec.IPv6)) {
				return &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("address %s is also used by host %s", addrOf(a), n)}
			}
		}
	}
	return nil
}

func addrOf(prefix string) string {
	a, _, _ := strings.Cut(prefix, "/")
	return a
}

func (f *Fake) CreateHost(_ context.Context, h inventory.Host, t store.Transition) (*inventory.HostRecord, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("add host %s: %w", h.Name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := store.CheckLiveChange(f.hostOrigin(h.Name), true); err != nil {
		return nil, fmt.Errorf("add host %s: %w", h.Name, err)
	}
	if err := f.taken(h); err != nil {
		return nil, fmt.Errorf("add host %s: %w", h.Name, err)
	}
	fh := &fakeHost{rec: inventory.HostRecord{Host: h, Origin: inventory.OriginLive, State: t.State, Token: t.Token, TokenExpires: t.Expires, UpdatedAt: time.Now()}, declared: h.Netboot}
	f.hosts[h.Name] = fh
	r := fh.rec
	return &r, nil
}

func (f *Fake) UpdateHost(_ context.Context, h inventory.Host) (*inventory.HostRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := store.CheckLiveChange(f.hostOrigin(h.Name), false); err != nil {
		return nil, fmt.Errorf("edit host %s: %w", h.Name, err)
	}
	if err := f.taken(h); err != nil {
		return nil, fmt.Errorf("edit host %s: %w", h.Name, err)
	}
	fh := f.hosts[h.Name]
	fh.rec.Host, fh.declared, fh.rec.UpdatedAt = h, h.Netboot, time.Now()
	r := fh.rec
	return &r, nil
}

func (f *Fake) DeleteHost(_ context.Context, name string) (*inventory.HostRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := store.CheckLiveChange(f.hostOrigin(name), false); err != nil {
		return nil, fmt.Errorf("remove host %s: %w", name, err)
	}
	r := f.hosts[name].rec
	delete(f.hosts, name)
	return &r, nil
}

func putEntry[T any](f *Fake, m map[string]entry[T], kind, name string, v T, create bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := store.CheckLiveChange(m[name].origin, create); err != nil {
		return fmt.Errorf("%s %s %s: %w", map[bool]string{true: "add", false: "edit"}[create], kind, name, err)
	}
	m[name] = entry[T]{inventory.OriginLive, v}
	return nil
}

func (f *Fake) PutProfile(_ context.Context, p inventory.Profile, create bool) error {
	return putEntry(f, f.profiles, "profile", p.Name, p, create)
}

func (f *Fake) PutDistro(_ context.Context, d inventory.Distro, create bool) error {
	return putEntry(f, f.distros, "distro", d.Name, d, create)
}

func deleteEntry[T any](f *Fake, m map[string]entry[T], kind, name, userKind string, users func() []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := store.CheckLiveChange(m[name].origin, false); err != nil {
		return fmt.Errorf("remove %s %s: %w", kind, name, err)
	}
	if u := users(); len(u) > 0 {
		slices.Sort(u)
		return fmt.Errorf("remove %s %s: %w", kind, name, &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("%s %s is used by %s %s", kind, name, userKind, strings.Join(u, ", "))})
	}
	delete(m, name)
	return nil
}

func (f *Fake) DeleteProfile(_ context.Context, name string) error {
	return deleteEntry(f, f.profiles, "profile", name, "host", func() []string {
		var u []string
		for n, h := range f.hosts {
			if h.rec.Profile == name {
				u = append(u, n)
			}
		}
		return u
	})
}

func (f *Fake) DeleteDistro(_ context.Context, name string) error {
	return deleteEntry(f, f.distros, "distro", name, "profile", func() []string {
		var u []string
		for n, p := range f.profiles {
			if p.v.Distro == name {
				u = append(u, n)
			}
		}
		return u
	})
}

func (f *Fake) Origins(context.Context) (map[string]string, map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ps, ds := map[string]string{}, map[string]string{}
	for n, e := range f.profiles {
		ps[n] = e.origin
	}
	for n, e := range f.distros {
		ds[n] = e.origin
	}
	return ps, ds, nil
}

func (Broken) CreateHost(context.Context, inventory.Host, store.Transition) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) UpdateHost(context.Context, inventory.Host) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) DeleteHost(context.Context, string) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) PutProfile(context.Context, inventory.Profile, bool) error { return ErrBroken }
func (Broken) PutDistro(context.Context, inventory.Distro, bool) error   { return ErrBroken }
func (Broken) DeleteProfile(context.Context, string) error               { return ErrBroken }
func (Broken) DeleteDistro(context.Context, string) error                { return ErrBroken }
func (Broken) Origins(context.Context) (map[string]string, map[string]string, error) {
	return nil, nil, ErrBroken
}

// liveRefs refuses a sync that would remove a profile a live host uses or
// a distro a live profile uses (the SQL stores' liveRefs).
func (f *Fake) liveRefs(d store.Declared) error {
	declared := map[string]bool{}
	for _, p := range d.Profiles {
		declared["profile "+p.Name] = true
	}
	for _, x := range d.Distros {
		declared["distro "+x.Name] = true
	}
	goes := func(kind, name string, origin string) bool {
		return origin == inventory.OriginFile && !declared[kind+" "+name]
	}
	var users []string
	for n, h := range f.hosts {
		if p, ok := f.profiles[h.rec.Profile]; h.rec.Origin == inventory.OriginLive && ok && goes("profile", h.rec.Profile, p.origin) {
			users = append(users, fmt.Sprintf("host %s uses profile %s", n, h.rec.Profile))
		}
	}
	if len(users) == 0 {
		for n, p := range f.profiles {
			if x, ok := f.distros[p.v.Distro]; p.origin == inventory.OriginLive && ok && goes("distro", p.v.Distro, x.origin) {
				users = append(users, fmt.Sprintf("profile %s uses distro %s", n, p.v.Distro))
			}
		}
	}
	if len(users) > 0 {
		slices.Sort(users)
		return &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("the file no longer declares what live objects use (live %s); change or remove them first, or keep it in the file", strings.Join(users, ", "))}
	}
	return nil
}

// RunLive is the live-object part of the contract: live objects are made,
// changed and removed; file objects are refused; what is in use stays.
func RunLive(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	s, reopen := open(t)
	if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
		t.Fatal(err)
	}
	want := func(err, target error) {
		t.Helper()
		if !errors.Is(err, target) {
			t.Fatalf("err = %v, want %v", err, target)
		}
	}
	// File objects are the file's.
	_, err := s.UpdateHost(ctx, inventory.Host{Name: "a", MACs: []string{"52:54:00:00:00:0a"}, Profile: "p", Netboot: "local"})
	want(err, store.ErrFileOwned)
	_, err = s.DeleteHost(ctx, "a")
	want(err, store.ErrFileOwned)
	want(s.PutProfile(ctx, inventory.Profile{Name: "p", Distro: "el9"}, false), store.ErrFileOwned)
	want(s.DeleteDistro(ctx, "el9"), store.ErrFileOwned)
	_, err = s.CreateHost(ctx, inventory.Host{Name: "a", MACs: []string{"52:54:00:00:00:99"}, Profile: "p"}, store.Transition{State: "local"})
	want(err, store.ErrFileOwned)

	// A live distro, profile and host.
	if err := s.PutDistro(ctx, inventory.Distro{Name: "imp", Release: "rhel9", Kernel: "k", Initrds: []string{"i"}}, true); err != nil {
		t.Fatal(err)
	}
	want(s.PutDistro(ctx, inventory.Distro{Name: "imp"}, true), store.ErrExists)
	if err := s.PutProfile(ctx, inventory.Profile{Name: "lp", Distro: "imp", Loader: "ipxe"}, true); err != nil {
		t.Fatal(err)
	}
	h := inventory.Host{Name: "live1", MACs: []string{"52:54:00:00:01:01"}, IPv4: "192.0.2.50/24", Profile: "lp", Netboot: "install"}
	rec, err := s.CreateHost(ctx, h, store.Transition{State: "install", Token: "livetok", Expires: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Origin != inventory.OriginLive || rec.State != "install" || rec.Token != "livetok" {
		t.Errorf("created %+v", rec)
	}
	if r, err := s.HostByMAC(ctx, "52:54:00:00:01:01"); err != nil || r.Name != "live1" {
		t.Errorf("by MAC: %v %v", r, err)
	}
	// Another host's MAC or address is refused, naming it.
	_, err = s.CreateHost(ctx, inventory.Host{Name: "live2", MACs: []string{"52:54:00:00:00:0a"}, Profile: "lp"}, store.Transition{State: "local"})
	want(err, store.ErrInUse)
	if !strings.Contains(err.Error(), "MAC 52:54:00:00:00:0a is also used by host a") {
		t.Errorf("err = %v", err)
	}
	_, err = s.UpdateHost(ctx, inventory.Host{Name: "live1", MACs: []string{"52:54:00:00:01:01"}, IPv4: "192.0.2.10/24", Profile: "lp"})
	want(err, store.ErrInUse)

	// An edit keeps state and token and moves the lookups.
	h.MACs, h.IPv4 = []string{"52:54:00:00:01:02"}, "192.0.2.51/24"
	rec, err = s.UpdateHost(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != "install" || rec.Token != "livetok" || rec.IPv4 != "192.0.2.51/24" {
		t.Errorf("edited %+v", rec)
	}
	if _, err := s.HostByMAC(ctx, "52:54:00:00:01:01"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old MAC still found: %v", err)
	}
	if r, err := s.HostByMAC(ctx, "52:54:00:00:01:02"); err != nil || r.Name != "live1" {
		t.Errorf("new MAC: %v %v", r, err)
	}

	// What is in use stays.
	err = s.DeleteProfile(ctx, "lp")
	want(err, store.ErrInUse)
	if !strings.Contains(err.Error(), "profile lp is used by host live1") {
		t.Errorf("err = %v", err)
	}
	err = s.DeleteDistro(ctx, "imp")
	want(err, store.ErrInUse)
	if !strings.Contains(err.Error(), "distro imp is used by profile lp") {
		t.Errorf("err = %v", err)
	}
	ps, ds, err := s.Origins(ctx)
	if err != nil || ps["lp"] != inventory.OriginLive || ps["p"] != inventory.OriginFile || ds["imp"] != inventory.OriginLive {
		t.Errorf("origins %v %v %v", ps, ds, err)
	}

	// The file cannot take away what a live object uses: the sync is
	// refused whole, naming it.
	if err := s.PutProfile(ctx, inventory.Profile{Name: "lp2", Distro: "el9", Loader: "ipxe"}, true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateHost(ctx, inventory.Host{Name: "live3", MACs: []string{"52:54:00:00:01:03"}, Profile: "p"}, store.Transition{State: "local"}); err != nil {
		t.Fatal(err)
	}
	without := Declared(now)
	without.Profiles, without.Distros, without.Hosts = nil, nil, nil
	_, err = s.SyncDeclared(ctx, without)
	want(err, store.ErrInUse)
	if !strings.Contains(err.Error(), "live host live3 uses profile p") {
		t.Errorf("err = %v", err)
	}
	if _, err := s.Host(ctx, "a"); err != nil {
		t.Errorf("a refused sync removed a file host: %v", err)
	}
	if _, err := s.DeleteHost(ctx, "live3"); err != nil {
		t.Fatal(err)
	}
	without.Profiles = Declared(now).Profiles // p stays; el9 would go, which lp2 uses
	without.Hosts = Declared(now).Hosts
	_, err = s.SyncDeclared(ctx, without)
	if !errors.Is(err, store.ErrInUse) || !strings.Contains(err.Error(), "profile lp2 uses distro el9") {
		t.Errorf("removing a distro a live profile uses: %v", err)
	}
	if err := s.DeleteProfile(ctx, "lp2"); err != nil {
		t.Fatal(err)
	}

	// A reload leaves live objects alone.
	if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
		t.Fatal(err)
	}
	if reopen != nil {
		s = reopen()
	}
	if r, err := s.Host(ctx, "live1"); err != nil || r.Origin != inventory.OriginLive {
		t.Fatalf("live host after a sync: %v %v", r, err)
	}
	old, err := s.DeleteHost(ctx, "live1")
	if err != nil || old.Name != "live1" {
		t.Fatalf("delete: %v %v", old, err)
	}
	if _, err := s.Host(ctx, "live1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted host found: %v", err)
	}
	if _, err := s.HostByMAC(ctx, "52:54:00:00:01:02"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted host's MAC found: %v", err)
	}
	_, err = s.DeleteHost(ctx, "live1")
	want(err, store.ErrNotFound)
	if err := s.DeleteProfile(ctx, "lp"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteDistro(ctx, "imp"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Distro(ctx, "imp"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted distro found: %v", err)
	}
}
