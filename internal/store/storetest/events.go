package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

type fakeEvents struct {
	evs    []store.Event
	nextID int64
}

func (f *Fake) AppendEvents(_ context.Context, evs []store.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range evs {
		f.events.nextID++
		e.ID = f.events.nextID
		e.At = time.UnixMilli(e.At.UnixMilli())
		f.events.evs = append(f.events.evs, e)
	}
	return nil
}

func (f *Fake) Events(_ context.Context, host string, afterID int64, limit int) ([]store.Event, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []store.Event
	for _, e := range f.events.evs {
		if e.ID > afterID && (host == "" || e.Host == host) {
			out = append(out, e)
			if limit > 0 && len(out) == limit {
				break
			}
		}
	}
	return out, nil
}

func (f *Fake) PruneEvents(_ context.Context, keep int, before time.Time) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	count := map[string]int{}
	for _, e := range f.events.evs {
		count[e.Host]++
	}
	var kept []store.Event
	seen := map[string]int{}
	var n int64
	for _, e := range f.events.evs {
		seen[e.Host]++
		if e.At.Before(before) || (keep > 0 && count[e.Host]-seen[e.Host] >= keep) {
			n++
			continue
		}
		kept = append(kept, e)
	}
	f.events.evs = kept
	return n, nil
}

func (f *Fake) RegisterDistro(_ context.Context, d inventory.Distro, p *inventory.Profile) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if e, ok := f.distros[d.Name]; ok && e.origin == inventory.OriginFile {
		return fmt.Errorf("register distro %s: distro %s is declared in the config file", d.Name, d.Name)
	}
	if p != nil {
		if e, ok := f.profiles[p.Name]; ok && e.origin == inventory.OriginFile {
			return fmt.Errorf("register distro %s: profile %s is declared in the config file", d.Name, p.Name)
		}
		f.profiles[p.Name] = entry[inventory.Profile]{inventory.OriginLive, *p}
	}
	f.distros[d.Name] = entry[inventory.Distro]{inventory.OriginLive, d}
	return nil
}

func (Broken) AppendEvents(context.Context, []store.Event) error { return ErrBroken }
func (Broken) Events(context.Context, string, int64, int) ([]store.Event, error) {
	return nil, ErrBroken
}
func (Broken) PruneEvents(context.Context, int, time.Time) (int64, error) { return 0, ErrBroken }
func (Broken) RegisterDistro(context.Context, inventory.Distro, *inventory.Profile) error {
	return ErrBroken
}

// RunEvents is the timeline and distro-registration part of the contract.
func RunEvents(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	t.Run("EventsInOrder", func(t *testing.T) {
		s, reopen := open(t)
		var evs []store.Event
		for i := 0; i < 5; i++ {
			evs = append(evs, store.Event{Host: "a", At: now.Add(time.Duration(i) * time.Second), Kind: "k", Detail: fmt.Sprint(i), Data: map[string]any{"n": float64(i)}})
		}
		evs = append(evs, store.Event{Host: "b", At: now, Kind: "k", Detail: "b"})
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if reopen != nil {
			s = reopen()
		}
		got, err := s.Events(ctx, "a", 0, 0)
		if err != nil || len(got) != 5 {
			t.Fatalf("Events(a) = %d, %v", len(got), err)
		}
		for i, e := range got {
			if e.Detail != fmt.Sprint(i) || e.Data["n"] != float64(i) || !e.At.Equal(evs[i].At) || (i > 0 && e.ID <= got[i-1].ID) {
				t.Errorf("event %d = %+v", i, e)
			}
		}
		after, _ := s.Events(ctx, "", got[2].ID, 2)
		if len(after) != 2 || after[0].ID != got[3].ID {
			t.Errorf("Events after %d = %+v", got[2].ID, after)
		}
		n, err := s.PruneEvents(ctx, 2, now.Add(-time.Hour))
		if err != nil || n != 3 {
			t.Errorf("PruneEvents = %d, %v; want 3", n, err)
		}
		if got, _ := s.Events(ctx, "a", 0, 0); len(got) != 2 || got[0].Detail != "3" {
			t.Errorf("after prune: %+v", got)
		}
		if n, _ := s.PruneEvents(ctx, 0, now.Add(time.Hour)); n != 3 {
			t.Errorf("prune by age removed %d, want 3", n)
		}
	})
	t.Run("RegisterDistro", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		d := inventory.Distro{Name: "imported", Release: "rhel9", Kernel: "k", Initrds: []string{"i"}}
		if err := s.RegisterDistro(ctx, d, &inventory.Profile{Name: "imported", Distro: "imported", Loader: "ipxe"}); err != nil {
			t.Fatal(err)
		}
		if p, err := s.Profile(ctx, "imported"); err != nil || p.Distro != "imported" {
			t.Errorf("profile = %v, %v", p, err)
		}
		// A file-owned name is refused, and nothing is half-registered.
		d2 := inventory.Distro{Name: "other", Release: "rhel9", Kernel: "k", Initrds: []string{"i"}}
		if err := s.RegisterDistro(ctx, d2, &inventory.Profile{Name: "p", Distro: "other"}); err == nil {
			t.Error("RegisterDistro replaced a file-owned profile")
		}
		if _, err := s.Distro(ctx, "other"); err == nil {
			t.Error("half-registered distro left behind")
		}
		// A resync of the file leaves live objects alone.
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Distro(ctx, "imported"); err != nil {
			t.Errorf("live distro removed by resync: %v", err)
		}
	})
}
