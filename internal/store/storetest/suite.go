// Package storetest is the contract every store.Store must meet, plus a fake
// and a broken store for other packages' tests. The same suite runs against
// SQLite, PostgreSQL and the fake, so they cannot drift apart.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Opener opens a fresh, empty store. reopen, when not nil, closes and
// reopens the same store, to check durability.
type Opener func(t *testing.T) (s store.Store, reopen func() store.Store)

// Declared returns a small file inventory used by the suite.
func Declared(now time.Time) store.Declared {
	n := 0
	return store.Declared{
		Distros:  []inventory.Distro{{Name: "el9", Release: "rhel9", Kernel: "vmlinuz", Initrds: []string{"initrd.img"}}},
		Profiles: []inventory.Profile{{Name: "p", Distro: "el9", Loader: "ipxe"}},
		Hosts: []inventory.Host{
			{Name: "a", MACs: []string{"52:54:00:00:00:0a"}, UUID: "00000000-0000-0000-0000-00000000000a", IPv4: "192.0.2.10/24", Profile: "p", Netboot: inventory.StateInstall},
			{Name: "b", MACs: []string{"52:54:00:00:00:0b"}, IPv6: "2001:db8::b/64", Profile: "p", Netboot: inventory.StateLocal},
		},
		Now: now, TokenTTL: time.Hour,
		NewToken: func() string { n++; return fmt.Sprintf("tok%d", n) },
	}
}

// Run runs the contract against a store implementation.
func Run(t *testing.T, open Opener) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())

	t.Run("SyncAndLookups", func(t *testing.T) {
		s, _ := open(t)
		rep, err := s.SyncDeclared(ctx, Declared(now))
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Added) != 4 {
			t.Errorf("added = %v, want 4 objects", rep.Added)
		}
		a, err := s.HostByMAC(ctx, "52-54-00-00-00-0A")
		if err != nil || a.Name != "a" {
			t.Fatalf("HostByMAC = %v, %v", a, err)
		}
		if a.State != inventory.StateInstall || a.Token != "tok1" || !a.TokenExpires.Equal(now.Add(time.Hour)) {
			t.Errorf("a = state %s token %q expires %v", a.State, a.Token, a.TokenExpires)
		}
		if r, err := s.HostByUUID(ctx, "00000000-0000-0000-0000-00000000000A"); err != nil || r.Name != "a" {
			t.Errorf("HostByUUID = %v, %v", r, err)
		}
		if r, err := s.HostByAddr(ctx, netip.MustParseAddr("2001:db8::b")); err != nil || r.Name != "b" {
			t.Errorf("HostByAddr = %v, %v", r, err)
		}
		if r, err := s.HostByToken(ctx, "tok1"); err != nil || r.Name != "a" {
			t.Errorf("HostByToken = %v, %v", r, err)
		}
		for _, f := range []func() error{
			func() error { _, err := s.HostByToken(ctx, ""); return err },
			func() error { _, err := s.HostByToken(ctx, "nope"); return err },
			func() error { _, err := s.HostByMAC(ctx, "52:54:00:99:99:99"); return err },
			func() error { _, err := s.Host(ctx, "zzz"); return err },
			func() error { _, err := s.Profile(ctx, "zzz"); return err },
			func() error { _, err := s.Distro(ctx, "zzz"); return err },
		} {
			if err := f(); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("lookup of a missing object: err = %v, want ErrNotFound", err)
			}
		}
		if p, err := s.Profile(ctx, "p"); err != nil || p.Distro != "el9" {
			t.Errorf("Profile = %v, %v", p, err)
		}
		hs, err := s.Hosts(ctx)
		if err != nil || len(hs) != 2 || hs[0].Name != "a" {
			t.Errorf("Hosts = %v, %v", hs, err)
		}
	})

	t.Run("LiveStateSurvivesResyncButFileEditWins", func(t *testing.T) {
		s, _ := open(t)
		d := Declared(now)
		if _, err := s.SyncDeclared(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetHostState(ctx, "a", store.Transition{State: inventory.StateLocal}); err != nil {
			t.Fatal(err)
		}
		rep, err := s.SyncDeclared(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Changed() {
			t.Errorf("resync of an unchanged file reported changes: %+v", rep)
		}
		if h, _ := s.Host(ctx, "a"); h.State != inventory.StateLocal {
			t.Errorf("live state lost on resync: %s", h.State)
		}
		d.Hosts[1].Netboot = inventory.StateInstall
		rep, err = s.SyncDeclared(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.States) != 1 || rep.States[0] != (store.StateChange{Host: "b", From: inventory.StateLocal, To: inventory.StateInstall, Why: store.WhyNetboot}) {
			t.Errorf("States = %+v", rep.States)
		}
		if h, _ := s.Host(ctx, "b"); h.State != inventory.StateInstall || h.Token == "" {
			t.Errorf("file edit of b's state not applied: %+v", h)
		}
	})

	t.Run("RemovedAndMovedMAC", func(t *testing.T) {
		s, _ := open(t)
		d := Declared(now)
		if _, err := s.SyncDeclared(ctx, d); err != nil {
			t.Fatal(err)
		}
		d.Hosts = []inventory.Host{{Name: "c", MACs: []string{"52:54:00:00:00:0a"}, Profile: "p", Netboot: inventory.StateLocal}}
		rep, err := s.SyncDeclared(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Removed) != 2 || len(rep.Added) != 1 {
			t.Errorf("report = %+v", rep)
		}
		if r, err := s.HostByMAC(ctx, "52:54:00:00:00:0a"); err != nil || r.Name != "c" {
			t.Errorf("moved MAC: %v, %v", r, err)
		}
	})

	t.Run("SyncOfChangedHostsOnly", func(t *testing.T) {
		s, _ := open(t)
		d := Declared(now)
		if _, err := s.SyncDeclared(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetHostState(ctx, "a", store.Transition{State: inventory.StateLocal}); err != nil {
			t.Fatal(err)
		}
		// b edited, c added; a untouched keeps its live state.
		d.Hosts[1].IPv6 = "2001:db8::bb/64"
		d.Hosts = append(d.Hosts, inventory.Host{Name: "c", MACs: []string{"52:54:00:00:00:0c"}, Profile: "p", Netboot: inventory.StateLocal})
		d.Changed = []string{"b", "c"}
		rep, err := s.SyncDeclared(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rep.Updated, rep.Added) != "[host b] [host c]" {
			t.Errorf("report = %+v", rep)
		}
		if r, err := s.HostByAddr(ctx, netip.MustParseAddr("2001:db8::bb")); err != nil || r.Name != "b" {
			t.Errorf("b's new address: %v, %v", r, err)
		}
		if h, _ := s.Host(ctx, "a"); h.State != inventory.StateLocal {
			t.Errorf("a's live state lost: %s", h.State)
		}
		// Nothing changed: nothing done.
		d.Changed = []string{}
		if rep, err := s.SyncDeclared(ctx, d); err != nil || rep.Changed() {
			t.Errorf("empty change: %+v, %v", rep, err)
		}
		// A new host may not take an unchanged host's MAC or address.
		bad := d
		bad.Hosts = append(slices.Clone(d.Hosts), inventory.Host{Name: "dup", MACs: []string{"52:54:00:00:00:0a"}, Profile: "p", Netboot: "local"})
		bad.Changed = []string{"dup"}
		if _, err := s.SyncDeclared(ctx, bad); err == nil {
			t.Error("scoped sync let a new host take a's MAC")
		}
		// c removed and its MAC given to a new host e in the same edit.
		d.Hosts = append(d.Hosts[:2], inventory.Host{Name: "e", MACs: []string{"52:54:00:00:00:0c"}, Profile: "p", Netboot: inventory.StateLocal})
		d.Changed = []string{"c", "e"}
		rep, err = s.SyncDeclared(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(rep.Removed, rep.Added) != "[host c] [host e]" {
			t.Errorf("report = %+v", rep)
		}
		if r, err := s.HostByMAC(ctx, "52:54:00:00:00:0c"); err != nil || r.Name != "e" {
			t.Errorf("moved MAC: %v, %v", r, err)
		}
	})

	t.Run("FailedSyncKeepsPreviousState", func(t *testing.T) {
		s, _ := open(t)
		d := Declared(now)
		if _, err := s.SyncDeclared(ctx, d); err != nil {
			t.Fatal(err)
		}
		bad := Declared(now)
		bad.Hosts = append(bad.Hosts, inventory.Host{Name: "dup", MACs: []string{"52:54:00:00:00:0b"}, Profile: "p", Netboot: "local"})
		bad.Hosts[0].Netboot = inventory.StateMenu
		if _, err := s.SyncDeclared(ctx, bad); err == nil {
			t.Fatal("sync with a MAC used twice succeeded")
		}
		if _, err := s.Host(ctx, "dup"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("half-applied sync: dup exists (%v)", err)
		}
		if h, _ := s.Host(ctx, "a"); h.State != inventory.StateInstall {
			t.Errorf("half-applied sync: a is %s", h.State)
		}
	})

	t.Run("SetState", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		exp := now.Add(2 * time.Hour)
		h, err := s.SetHostState(ctx, "b", store.Transition{State: inventory.StateInstall, Token: "fresh", Expires: exp})
		if err != nil || h.Token != "fresh" || !h.TokenExpires.Equal(exp) || h.State != inventory.StateInstall {
			t.Fatalf("SetState = %+v, %v", h, err)
		}
		for _, bad := range []store.Transition{{State: "bogus"}, {State: inventory.StateInstall}, {State: inventory.StateLocal, Token: "x"}} {
			if _, err := s.SetHostState(ctx, "b", bad); err == nil {
				t.Errorf("SetState accepted %+v", bad)
			}
		}
		if _, err := s.SetHostState(ctx, "nope", store.Transition{State: inventory.StateLocal}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SetState of a missing host: %v", err)
		}
		// Leaving install clears the token: no old kickstart URL or
		// callback works afterwards.
		if _, err := s.SetHostState(ctx, "b", store.Transition{State: inventory.StateLocal, IfToken: "stale"}); !errors.Is(err, store.ErrConflict) {
			t.Errorf("SetState conditioned on a stale token: %v, want ErrConflict", err)
		}
		h, err = s.SetHostState(ctx, "b", store.Transition{State: inventory.StateLocal, IfToken: "fresh"})
		if err != nil || h.Token != "" || !h.TokenExpires.IsZero() || h.State != inventory.StateLocal {
			t.Fatalf("leaving install: %+v, %v", h, err)
		}
		if _, err := s.HostByToken(ctx, "fresh"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("an old token still finds its host after install: %v", err)
		}
	})

	t.Run("RemovedAndRestoredResumesState", func(t *testing.T) {
		s, _ := open(t)
		d := Declared(now)
		if _, err := s.SyncDeclared(ctx, d); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetHostState(ctx, "a", store.Transition{State: inventory.StateLocal}); err != nil {
			t.Fatal(err)
		}
		empty := Declared(now)
		empty.Hosts = nil
		rep, err := s.SyncDeclared(ctx, empty)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Retired) != 2 {
			t.Errorf("Retired = %+v", rep.Retired)
		}
		rep, err = s.SyncDeclared(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		h, err := s.Host(ctx, "a")
		if err != nil || h.State != inventory.StateLocal || h.Token != "" {
			t.Fatalf("restored host a: %+v, %v; want local without a token (its netboot: did not change)", h, err)
		}
		want := store.StateChange{Host: "a", From: inventory.StateLocal, To: inventory.StateLocal, Why: store.WhyRestored}
		found := false
		for _, c := range rep.States {
			found = found || c == want
		}
		if !found {
			t.Errorf("States = %+v, want %+v", rep.States, want)
		}
		// Removed again, and restored with a different netboot: value:
		// the edit of netboot itself is what the file asks for.
		if _, err := s.SyncDeclared(ctx, empty); err != nil {
			t.Fatal(err)
		}
		d.Hosts[0].Netboot = inventory.StateMenu
		if _, err := s.SyncDeclared(ctx, d); err != nil {
			t.Fatal(err)
		}
		if h, _ := s.Host(ctx, "a"); h.State != inventory.StateMenu {
			t.Errorf("restored with netboot changed: state %s, want menu", h.State)
		}
	})

	t.Run("HostsChangedSince", func(t *testing.T) {
		s, _ := open(t)
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
		mark := time.Now()
		time.Sleep(5 * time.Millisecond)
		if _, err := s.SetHostState(ctx, "b", store.Transition{State: inventory.StateMenu}); err != nil {
			t.Fatal(err)
		}
		hs, n, err := s.HostsChangedSince(ctx, mark)
		if err != nil || n != 2 || len(hs) != 1 || hs[0].Name != "b" || hs[0].State != inventory.StateMenu {
			t.Errorf("HostsChangedSince = %+v, %d, %v; want b only, 2 hosts", hs, n, err)
		}
	})

	RunEvents(t, open)
	t.Run("LiveObjects", func(t *testing.T) { RunLive(t, open) })
	RunAPITokens(t, open)
	t.Run("Discovered", func(t *testing.T) { RunDiscovered(t, open) })

	t.Run("Durable", func(t *testing.T) {
		s, reopen := open(t)
		if reopen == nil {
			t.Skip("store is not durable by design")
		}
		if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
			t.Fatal(err)
		}
		if _, err := s.SetHostState(ctx, "a", store.Transition{State: inventory.StateLocal}); err != nil {
			t.Fatal(err)
		}
		s = reopen()
		h, err := s.Host(ctx, "a")
		if err != nil || h.State != inventory.StateLocal || len(h.MACs) != 1 {
			t.Fatalf("after reopen: %+v, %v", h, err)
		}
	})
}
