package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Fake is an in-memory store for unit tests of other packages. It meets the
// same contract as the SQL stores (the suite runs against it).
type Fake struct {
	mu       sync.Mutex
	distros  map[string]entry[inventory.Distro]
	profiles map[string]entry[inventory.Profile]
	hosts    map[string]*fakeHost
	leases   map[netip.Addr]store.Lease // see leases.go; created on first use
	events   fakeEvents
	tokens   map[string]store.APIToken // see apitokens.go; created on first use
	retired  map[string]fakeHost       // hosts removed from the file, by name
	shared   bool                      // SharedLeases: as if another server wrote leases too
}

type entry[T any] struct {
	origin string
	v      T
}

type fakeHost struct {
	rec      inventory.HostRecord
	declared string
}

// NewFake returns an empty fake store.
func NewFake() *Fake {
	return &Fake{distros: map[string]entry[inventory.Distro]{}, profiles: map[string]entry[inventory.Profile]{}, hosts: map[string]*fakeHost{}}
}

func (f *Fake) Close() error { return nil }

func syncMap[T any](m map[string]entry[T], want []T, name func(T) string, kind string, rep *store.SyncReport) {
	declared := map[string]bool{}
	for _, x := range want {
		n := name(x)
		declared[n] = true
		old, ok := m[n]
		switch {
		case !ok:
			rep.Added = append(rep.Added, kind+" "+n)
		case old.origin != inventory.OriginFile:
			rep.TakenOver = append(rep.TakenOver, kind+" "+n)
		case !reflect.DeepEqual(old.v, x):
			rep.Updated = append(rep.Updated, kind+" "+n)
		}
		m[n] = entry[T]{inventory.OriginFile, x}
	}
	for n, e := range m {
		if e.origin == inventory.OriginFile && !declared[n] {
			delete(m, n)
			rep.Removed = append(rep.Removed, kind+" "+n)
		}
	}
}

func (f *Fake) SyncDeclared(_ context.Context, d store.Declared) (store.SyncReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Check first, so a failed sync changes nothing.
	owner := map[string]string{}
	for n, h := range f.hosts {
		if h.rec.Origin != inventory.OriginFile {
			for _, m := range h.rec.MACs {
				owner[m] = n
			}
		}
	}
	for _, h := range d.Hosts {
		for _, m := range h.MACs {
			if o, ok := owner[m]; ok && o != h.Name {
				return store.SyncReport{}, fmt.Errorf("sync inventory: host %s: mac %s is already used by host %s", h.Name, m, o)
			}
			owner[m] = h.Name
		}
	}
	if err := f.liveRefs(d); err != nil {
		return store.SyncReport{}, fmt.Errorf("sync inventory: %w", err)
	}
	var rep store.SyncReport
	syncMap(f.distros, d.Distros, func(x inventory.Distro) string { return x.Name }, "distro", &rep)
	syncMap(f.profiles, d.Profiles, func(x inventory.Profile) string { return x.Name }, "profile", &rep)
	want := map[string]bool{}
	for _, h := range d.Hosts {
		want[h.Name] = true
	}
	for n, h := range f.hosts {
		if h.rec.Origin == inventory.OriginFile && !want[n] {
			if f.retired == nil {
				f.retired = map[string]fakeHost{}
			}
			f.retired[n] = *h
			delete(f.hosts, n)
			rep.Removed = append(rep.Removed, "host "+n)
			rep.Retired = append(rep.Retired, store.StateChange{Host: n, From: h.rec.State, Why: store.WhyRemoved})
		}
	}
	for _, h := range d.Hosts {
		old := f.hosts[h.Name]
		fh := &fakeHost{rec: inventory.HostRecord{Host: h, Origin: inventory.OriginFile, UpdatedAt: d.Now}}
		switch {
		case old == nil:
			rep.Added = append(rep.Added, "host "+h.Name)
		case old.rec.Origin != inventory.OriginFile:
			rep.TakenOver = append(rep.TakenOver, "host "+h.Name)
		case !reflect.DeepEqual(old.rec.Host, h):
			rep.Updated = append(rep.Updated, "host "+h.Name)
		}
		state := h.Netboot
		switch r, wasRetired := f.retired[h.Name]; {
		case old != nil && old.declared == h.Netboot:
			fh.rec.State, fh.rec.Token, fh.rec.TokenExpires, fh.declared = old.rec.State, old.rec.Token, old.rec.TokenExpires, old.declared
			if reflect.DeepEqual(old.rec.Host, h) && old.rec.Origin == inventory.OriginFile {
				fh.rec.UpdatedAt = old.rec.UpdatedAt
			}
			f.hosts[h.Name] = fh
			continue
		case old != nil:
			if old.rec.State != h.Netboot || h.Netboot == inventory.StateInstall {
				rep.States = append(rep.States, store.StateChange{Host: h.Name, From: old.rec.State, To: h.Netboot, Why: store.WhyNetboot})
			}
		case wasRetired:
			delete(f.retired, h.Name)
			ch := store.StateChange{Host: h.Name, From: r.rec.State, To: h.Netboot, Why: store.WhyNetboot}
			if r.declared == h.Netboot {
				state, ch.To, ch.Why = r.rec.State, r.rec.State, store.WhyRestored
			}
			rep.States = append(rep.States, ch)
		default:
			rep.States = append(rep.States, store.StateChange{Host: h.Name, To: h.Netboot, Why: store.WhyNewHost})
		}
		fh.rec.State, fh.declared = state, h.Netboot
		if state == inventory.StateInstall && d.NewToken != nil {
			fh.rec.Token, fh.rec.TokenExpires = d.NewToken(), d.Now.Add(d.TokenTTL)
		}
		f.hosts[h.Name] = fh
	}
	return rep, nil
}

func (f *Fake) find(what string, match func(*inventory.HostRecord) bool) (*inventory.HostRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, h := range f.hosts {
		if match(&h.rec) {
			r := h.rec
			return &r, nil
		}
	}
	return nil, fmt.Errorf("host by %s: %w", what, store.ErrNotFound)
}

func (f *Fake) Host(_ context.Context, name string) (*inventory.HostRecord, error) {
	return f.find("name", func(r *inventory.HostRecord) bool { return r.Name == name })
}

func (f *Fake) HostByMAC(_ context.Context, mac string) (*inventory.HostRecord, error) {
	mac = inventory.NormalMAC(mac)
	return f.find("mac", func(r *inventory.HostRecord) bool { return slices.Contains(r.MACs, mac) })
}

func (f *Fake) HostByUUID(_ context.Context, uuid string) (*inventory.HostRecord, error) {
	uuid = inventory.NormalUUID(uuid)
	return f.find("uuid", func(r *inventory.HostRecord) bool { return uuid != "" && r.UUID == uuid })
}

func (f *Fake) HostByAddr(_ context.Context, a netip.Addr) (*inventory.HostRecord, error) {
	return f.find("address", func(r *inventory.HostRecord) bool {
		p4, ok4 := r.Addr4()
		p6, ok6 := r.Addr6()
		return (ok4 && p4.Addr() == a.Unmap()) || (ok6 && p6.Addr() == a)
	})
}

func (f *Fake) HostByToken(_ context.Context, token string) (*inventory.HostRecord, error) {
	return f.find("token", func(r *inventory.HostRecord) bool { return token != "" && r.Token == token })
}

func (f *Fake) Hosts(context.Context) ([]inventory.HostRecord, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []inventory.HostRecord
	for _, h := range f.hosts {
		out = append(out, h.rec)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *Fake) SetHostState(_ context.Context, name string, t store.Transition) (*inventory.HostRecord, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("set state of %s: %w", name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	h, ok := f.hosts[name]
	if !ok {
		return nil, fmt.Errorf("set state of %s: %w", name, store.ErrNotFound)
	}
	if t.IfToken != "" && h.rec.Token != t.IfToken {
		return nil, fmt.Errorf("set state of %s: %w", name, store.ErrConflict)
	}
	h.rec.State, h.rec.UpdatedAt = t.State, time.Now()
	h.rec.Token, h.rec.TokenExpires = t.Token, t.Expires
	if t.Token == "" {
		h.rec.TokenExpires = time.Time{}
	}
	r := h.rec
	return &r, nil
}

func (f *Fake) HostsChangedSince(_ context.Context, since time.Time) ([]inventory.HostRecord, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []inventory.HostRecord
	for _, h := range f.hosts {
		if !h.rec.UpdatedAt.Before(since) {
			out = append(out, h.rec)
		}
	}
	return out, len(f.hosts), nil
}

func get[T any](f *Fake, m map[string]entry[T], kind, name string) (*T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := m[name]
	if !ok {
		return nil, fmt.Errorf("%s %s: %w", kind, name, store.ErrNotFound)
	}
	return &e.v, nil
}

func list[T any](f *Fake, m map[string]entry[T]) []T {
	f.mu.Lock()
	defer f.mu.Unlock()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]T, 0, len(m))
	for _, n := range names {
		out = append(out, m[n].v)
	}
	return out
}

func (f *Fake) Profile(_ context.Context, n string) (*inventory.Profile, error) {
	return get(f, f.profiles, "profile", n)
}
func (f *Fake) Profiles(context.Context) ([]inventory.Profile, error) {
	return list(f, f.profiles), nil
}
func (f *Fake) Distro(_ context.Context, n string) (*inventory.Distro, error) {
	return get(f, f.distros, "distro", n)
}
func (f *Fake) Distros(context.Context) ([]inventory.Distro, error) { return list(f, f.distros), nil }

// ErrBroken is what Broken returns from every call.
var ErrBroken = errors.New("store is broken (test fake)")

// Broken fails every call, to test that callers surface store failures
// instead of treating them as "not found" (which would, say, boot an
// installing host from its local disk).
type Broken struct{}

func (Broken) SyncDeclared(context.Context, store.Declared) (store.SyncReport, error) {
	return store.SyncReport{}, ErrBroken
}
func (Broken) Host(context.Context, string) (*inventory.HostRecord, error) { return nil, ErrBroken }
func (Broken) HostByMAC(context.Context, string) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) HostByUUID(context.Context, string) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) HostByAddr(context.Context, netip.Addr) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) HostByToken(context.Context, string) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) Hosts(context.Context) ([]inventory.HostRecord, error) { return nil, ErrBroken }
func (Broken) HostsChangedSince(context.Context, time.Time) ([]inventory.HostRecord, int, error) {
	return nil, 0, ErrBroken
}
func (Broken) SetHostState(context.Context, string, store.Transition) (*inventory.HostRecord, error) {
	return nil, ErrBroken
}
func (Broken) Profile(context.Context, string) (*inventory.Profile, error) { return nil, ErrBroken }
func (Broken) Profiles(context.Context) ([]inventory.Profile, error)       { return nil, ErrBroken }
func (Broken) Distro(context.Context, string) (*inventory.Distro, error)   { return nil, ErrBroken }
func (Broken) Distros(context.Context) ([]inventory.Distro, error)         { return nil, ErrBroken }
func (Broken) Close() error                                                { return nil }
