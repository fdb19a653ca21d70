package enginetest

import (
	"context"
	"net/netip"
	"testing"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Family is a family's server as its unit tests drive it.
type Family interface {
	dhcpengine.Handler
	Core() *dhcpengine.Engine
}

// Harness is a family's server fed packets by the test, replying into a
// Recorder, with its events collected.
type Harness[S Family] struct {
	T      *testing.T
	S      S
	St     store.Store
	Link   any
	Rec    *Recorder
	Events *Events
}

// NewHarness makes a server over st (made by newServer, with the inventory
// setup syncs into st) answering on link. tweak may change the options
// first. Call Start before handing it packets.
func NewHarness[S Family](t *testing.T, st store.Store, link any, newServer func(dhcpengine.Options) (S, error),
	setup func(store.Store) (*inventory.Config, dhcpengine.Booter), tweak ...func(*dhcpengine.Options)) *Harness[S] {
	t.Helper()
	cfg, booter := setup(st)
	h := &Harness[S]{T: t, St: st, Link: link, Rec: &Recorder{}, Events: &Events{}}
	o := dhcpengine.Options{Config: func() *inventory.Config { return cfg }, Booter: booter, Store: st, OnEvent: h.Events.Add}
	for _, f := range tweak {
		f(&o)
	}
	s, err := newServer(o)
	if err != nil {
		t.Fatal(err)
	}
	h.S = s
	return h
}

// Start runs the group commit until the test ends. Tests that change the
// engine's commit tunables do so before.
func (h *Harness[S]) Start() *Harness[S] {
	h.T.Cleanup(h.S.Core().Start(context.Background()))
	return h
}

// Deliver hands data to the server as if it arrived on port from src,
// through conn, and waits for its commits.
func (h *Harness[S]) Deliver(conn dhcpengine.Conn, port int, src string, data []byte) {
	Deliver(h.S.Core(), h.S, conn, h.Link, port, netip.MustParseAddrPort(src), data)
}
