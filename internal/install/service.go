// Package install owns the install lifecycle: it is the only package that
// changes a host's netboot state or mints a build token, and the one that
// answers a build token's requests (the kickstart and the built/failed
// callbacks), a menu choice, and a preview. HTTP, the API, the CLI, file
// reloads and `vm install` are transports that call it (matchbox's
// server.Server model); none of them decides any of this itself.
//
// Every state change records exactly one "state" event on the host's
// timeline, written to the store before the call returns, saying what
// caused it: an API token, the CLI, a callback, a menu choice or the file.
package install

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/groupcommit"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/ratelimit"
	"github.com/kickstand/kickstand/internal/render"
	"github.com/kickstand/kickstand/internal/store"
)

// Store is what the lifecycle reads and writes.
type Store interface {
	SyncDeclared(ctx context.Context, d store.Declared) (store.SyncReport, error)
	SetHostState(ctx context.Context, name string, t store.Transition) (*inventory.HostRecord, error)
	Host(ctx context.Context, name string) (*inventory.HostRecord, error)
	HostByToken(ctx context.Context, token string) (*inventory.HostRecord, error)
	AppendEvents(ctx context.Context, evs []store.Event) error
	RegisterDistro(ctx context.Context, d inventory.Distro, p *inventory.Profile) error
	Profiles(ctx context.Context) ([]inventory.Profile, error)
	Hosts(ctx context.Context) ([]inventory.HostRecord, error)
	store.LiveStore
}

// Publisher shows events written here to live views (the API's event
// stream) as they happen; timeline.Recorder is one.
type Publisher interface {
	Publish(evs ...store.Event)
}

// Deps are the service's own dependencies.
type Deps struct {
	Store  Store
	Booter *boot.Booter
	Config func() *inventory.Config
	// Templates caches parsed kickstart templates (nil: a new cache).
	Templates *render.Templates
	Publish   Publisher // nil: nobody watches
	Log       *slog.Logger
	Now       func() time.Time
	// NewToken mints build tokens (nil: 130 random bits, base32). Tests
	// set it to make tokens predictable.
	NewToken func() string
}

// Service is the lifecycle. Make it with New.
type Service struct {
	d   Deps
	ks  ksCache
	cbs *ratelimit.Limiter
	// done remembers recently finished installs, so that a callback
	// repeated after its answer was lost (curl --retry) is told "ok"
	// rather than 404, without reopening anything.
	done recent
	// failed remembers the tokens whose failure was reported: one
	// upload per install.
	failed recent
	// events makes concurrent lifecycle appends one commit.
	events groupcommit.Group[[]store.Event]
}

// New makes a Service.
func New(d Deps) *Service {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Templates == nil {
		d.Templates = &render.Templates{}
	}
	if d.NewToken == nil {
		d.NewToken = rand.Text
	}
	svc := &Service{d: d,
		// An installer sends two callbacks per install; a source
		// sending more than a few a second is not an installer.
		cbs: ratelimit.New(ratelimit.Limits{PerSource: 1, PerSourceBurst: 10, Global: 1000, GlobalBurst: 2000}),
	}
	svc.events.Commit = func(ctx context.Context, batch [][]store.Event) error {
		var all []store.Event
		for _, evs := range batch {
			all = append(all, evs...)
		}
		return d.Store.AppendEvents(ctx, all)
	}
	svc.events.Timeout = writeTime
	return svc
}

// Cause says who or what changed a host.
type Cause struct {
	// Kind is api, cli, callback, menu, file or "vm install".
	Kind string
	// Who names the actor: the API token's name, the client address.
	Who string
}

func (c Cause) String() string {
	if c.Who == "" {
		return c.Kind
	}
	return c.Kind + " " + c.Who
}

// Causes of state changes.
var (
	ByCLI       = Cause{Kind: "cli"}
	ByFile      = Cause{Kind: "file"}
	ByVMInstall = Cause{Kind: "vm install"}
)

// ByAPI is a change made through the REST API with the named token.
func ByAPI(token string) Cause { return Cause{Kind: "api", Who: token} }

func (s *Service) now() time.Time { return s.d.Now() }

// Booter is the boot decision the service answers with.
func (s *Service) Booter() *boot.Booter { return s.d.Booter }

// Build puts a host into install with a fresh build token. From install
// it restarts the install: the old token stops working.
func (s *Service) Build(ctx context.Context, host string, by Cause) (*inventory.HostRecord, error) {
	return s.transition(ctx, host, inventory.StateInstall, by, "")
}

// SetState changes a host's netboot state; install means Build.
func (s *Service) SetState(ctx context.Context, host, state string, by Cause) (*inventory.HostRecord, error) {
	switch state {
	case inventory.StateInstall, inventory.StateLocal, inventory.StateMenu:
	default:
		return nil, fmt.Errorf("set state of %s: unknown state %q (want install, local or menu)", host, state)
	}
	return s.transition(ctx, host, state, by, "")
}

// transition is every live state change. ifToken conditions it on the
// host still holding that token (a callback of a superseded install).
func (s *Service) transition(ctx context.Context, host, to string, by Cause, ifToken string) (*inventory.HostRecord, error) {
	ctx, cancel := detached(ctx)
	defer cancel()
	old, err := s.d.Store.Host(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("set state of %s: %w", host, err)
	}
	t := store.Transition{State: to, IfToken: ifToken}
	if to == inventory.StateInstall {
		t.Token, t.Expires = s.mint()
	}
	rec, err := s.d.Store.SetHostState(ctx, host, t)
	if err != nil {
		return nil, err
	}
	s.d.Booter.Index.Put(rec)
	s.record(ctx, stateEvent(host, old.State, to, by, "", s.now()))
	s.d.Log.InfoContext(ctx, "host state changed", "host", host, "from", old.State, "to", to, "by", by.String())
	return rec, nil
}

// writeTime bounds a state change and its record once begun.
const writeTime = 30 * time.Second

// detached is ctx without its cancellation, bounded by writeTime: a state
// change and the events that record it are finished even when the client
// that asked went away or its request ran out of time (a callback held up
// by a busy store). Cut in the middle, the state would change without its
// timeline entry, or a callback be taken while its installer is told it
// was not -- and its retry, the token now cleared, be refused.
func detached(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), writeTime)
}

func (s *Service) mint() (string, time.Time) {
	ttl := time.Duration(s.d.Config().Server.TokenTTL)
	if ttl <= 0 {
		ttl = 6 * time.Hour
	}
	return s.d.NewToken(), s.now().Add(ttl)
}

func stateEvent(host, from, to string, by Cause, why string, at time.Time) store.Event {
	detail := fmt.Sprintf("%s -> %s (by %s)", orNone(from), to, by)
	if why != "" {
		detail = fmt.Sprintf("%s -> %s (%s)", orNone(from), to, why)
	}
	data := map[string]any{"from": from, "to": to, "by": by.Kind}
	if by.Who != "" {
		data["who"] = by.Who
	}
	if why != "" {
		data["why"] = why
	}
	return store.Event{Host: host, At: at, Kind: "state", Detail: detail, Data: data}
}

func orNone(s string) string {
	if s == "" {
		return "(new)"
	}
	return s
}

// record writes lifecycle events durably, in order, before the change is
// reported done, and shows them to live views.
func (s *Service) record(ctx context.Context, evs ...store.Event) {
	if len(evs) == 0 {
		return
	}
	ctx, cancel := detached(ctx)
	defer cancel()
	if err := s.events.Do(ctx, evs); err != nil {
		s.d.Log.ErrorContext(ctx, "timeline: lifecycle events lost", "n", len(evs), "err", err)
		return
	}
	if s.d.Publish != nil {
		s.d.Publish.Publish(evs...)
	}
}

// SyncFile makes the store agree with the file (the ownership rules in
// store.SyncDeclared) and puts every state change it caused, and every
// host it removed, on that host's timeline. The host index is re-read.
func (s *Service) SyncFile(ctx context.Context, cfg *inventory.Config) (store.SyncReport, error) {
	return s.SyncChanged(ctx, cfg, nil)
}

// SyncChanged is SyncFile when only the named hosts can differ from the
// last sync (store.Declared.Changed; nil: any host): only they are
// written, and the host index follows the store's changes instead of
// being re-read whole, so a one-host edit of 100,000 stays cheap.
func (s *Service) SyncChanged(ctx context.Context, cfg *inventory.Config, changed []string) (store.SyncReport, error) {
	rep, err := s.d.Store.SyncDeclared(ctx, store.Declared{
		Distros: cfg.Distros, Profiles: cfg.Profiles, Hosts: cfg.Hosts,
		Now: s.now(), TokenTTL: tokenTTL(cfg), NewToken: s.d.NewToken,
		Changed: changed,
	})
	if err != nil {
		return rep, fmt.Errorf("%s: %w", cfg.Path, err)
	}
	now := s.now()
	var evs []store.Event
	for _, c := range rep.States {
		evs = append(evs, stateEvent(c.Host, c.From, c.To, ByFile, c.Why, now))
	}
	for _, c := range rep.Retired {
		evs = append(evs, store.Event{Host: c.Host, At: now, Kind: "inventory",
			Detail: fmt.Sprintf("removed from the file; its state (%s) is kept in case it returns", c.From),
			Data:   map[string]any{"why": c.Why, "state": c.From}})
	}
	s.record(ctx, evs...)
	var states []string
	for _, c := range rep.States {
		states = append(states, fmt.Sprintf("%s: %s -> %s (%s)", c.Host, orNone(c.From), c.To, c.Why))
	}
	for _, group := range []struct {
		what string
		l    []string
	}{{"added", rep.Added}, {"updated", rep.Updated}, {"removed", rep.Removed}, {"taken over from live edits", rep.TakenOver}, {"host state set by the file", states}} {
		logEach(ctx, s.d.Log, "inventory "+group.what, group.l)
	}
	reindex := s.d.Booter.Index.Load
	if changed != nil {
		reindex = s.d.Booter.Index.Follow
	}
	if err := reindex(ctx, s.d.Booter.Store, cfg.DHCP6.DUIDs); err != nil {
		return rep, err
	}
	return rep, nil
}

// logEach logs one line per item of a reload's report, or, past a hundred
// (a first start of a large inventory), one line with how many there were
// and the first few: every one of them is on its host's timeline anyway.
func logEach(ctx context.Context, log *slog.Logger, msg string, items []string) {
	const most = 100
	if len(items) <= most {
		for _, x := range items {
			log.InfoContext(ctx, msg, "object", x)
		}
		return
	}
	log.InfoContext(ctx, msg, "count", len(items), "first", items[:5])
}

func tokenTTL(cfg *inventory.Config) time.Duration {
	if ttl := time.Duration(cfg.Server.TokenTTL); ttl > 0 {
		return ttl
	}
	return 6 * time.Hour
}

// HostOf says which host an address belongs to, "" for none, for
// attributing events (syslog, requests) to a host's timeline.
func (s *Service) HostOf(ctx context.Context, a netip.Addr) string {
	id, err := s.d.Booter.IdentifyAddr(ctx, a)
	if err != nil || id.Host == nil {
		return ""
	}
	return id.Host.Name
}
