package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/ratelimit"
	"github.com/kickstand/kickstand/internal/render"
	"github.com/kickstand/kickstand/internal/store"
)

// Store is what discovery reads and writes.
type Store interface {
	ReportDiscovered(ctx context.Context, d store.Discovered, lim store.DiscoveryLimits) (bool, error)
	DiscoveredMachine(ctx context.Context, mac string) (*store.Discovered, error)
}

// Assigner turns a discovered machine into a host: the lifecycle.
type Assigner interface {
	AssignDiscovered(ctx context.Context, mac string, h inventory.Host, by install.Cause) (*inventory.HostRecord, error)
}

// Deps are the service's dependencies.
type Deps struct {
	Store   Store
	Booter  *boot.Booter
	Install Assigner
	Config  func() *inventory.Config
	Log     *slog.Logger
	Now     func() time.Time
}

// Service answers the waiting room's polls. Make it with New.
type Service struct {
	d Deps
	// perAddr bounds requests per client address: a flood from one
	// address gets 429s, whatever MACs it invents.
	perAddr *ratelimit.Limiter
	// perMAC bounds report writes per MAC: a waiting machine polls every
	// few seconds, but its report is written at most once per
	// discovery.refresh_every.
	perMAC *ratelimit.Limiter
	// fullLogged spaces "max_machines reached": once a minute, however
	// many machines it turns away.
	fullLogged ratelimit.Every
}

// New makes a Service; the per-MAC rate is the config's at this time.
func New(d Deps) *Service {
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	every := time.Duration(d.Config().Discovery.RefreshEvery)
	return &Service{d: d, fullLogged: ratelimit.Every{Interval: time.Minute},
		perAddr: ratelimit.New(ratelimit.Limits{PerSource: 1, PerSourceBurst: 10, Global: 200, GlobalBurst: 400}),
		perMAC:  ratelimit.New(ratelimit.Limits{PerSource: 1 / every.Seconds(), PerSourceBurst: 1, Global: 50, GlobalBurst: 200}),
	}
}

// Answer is what a poll gets.
type Answer struct {
	Status int
	Body   []byte // an iPXE script, or the reason for a refusal
	// Host is the host the machine is (or was just assigned as), if any.
	Host string
	// Refused says why a poll was refused or not stored.
	Refused string
}

// Poll is one request of the waiting room: a report of what the machine
// is, and the question whether it was assigned. A machine that turns out
// to be a host (its lease or static address, or the address it reported
// from bound to the host it was assigned) gets that host's boot script.
func (s *Service) Poll(ctx context.Context, f boot.Facts, rawQuery string) (Answer, error) {
	now := s.d.Now()
	if !s.perAddr.Allow(f.ClientIP.String(), now) {
		return Answer{Status: http.StatusTooManyRequests, Body: []byte("too many requests\n"), Refused: "rate limited"}, nil
	}
	cfg := s.d.Config()
	if cfg.Menu.Unknown != inventory.MenuDiscover {
		return Answer{Status: http.StatusNotFound, Body: []byte("discovery is off (menu.unknown is not discover)\n"), Refused: "discovery is off"}, nil
	}
	rep, err := ParseReport(rawQuery)
	if err != nil {
		return Answer{Status: http.StatusBadRequest, Body: []byte(err.Error() + "\n"), Refused: err.Error()}, nil
	}
	id, err := s.d.Booter.IdentifyAddr(ctx, f.ClientIP)
	if err != nil {
		return Answer{}, err
	}
	if id.Host != nil {
		return s.boot(ctx, f, id.Host.Name)
	}
	rep.Proof, rep.Addr, rep.LastSeen = "claimed", f.ClientIP.String(), now
	if id.MAC != "" { // the lease proves the MAC; a claimed one is only a claim
		rep.MAC, rep.Proof = id.MAC, "lease"
	}
	old, err := s.d.Store.DiscoveredMachine(ctx, rep.MAC)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Answer{}, err
	}
	if old != nil && old.Host != "" {
		return s.assigned(ctx, f, old)
	}
	if h := s.d.Booter.Index.ByMAC(rep.MAC); h != nil {
		// A known host's MAC from an address that is not the host's:
		// a claim, not a new machine. Nothing is stored.
		return Answer{Status: http.StatusOK, Body: render.IPXEWait(s.wait(cfg), "waiting"),
			Refused: fmt.Sprintf("MAC %s is host %s's, but the request comes from %s", rep.MAC, h.Name, f.ClientIP)}, nil
	}
	// A new machine is always written; either way the write spends the
	// MAC's allowance, so its next polls are not written again before
	// refresh_every.
	if allowed := s.perMAC.Allow(rep.MAC, now); old == nil || allowed {
		created, err := s.d.Store.ReportDiscovered(ctx, rep, store.DiscoveryLimits{
			Max: cfg.Discovery.MaxMachines, StaleBefore: now.Add(-time.Duration(cfg.Discovery.StaleAfter))})
		switch {
		case errors.Is(err, store.ErrFull):
			// Not stored; the machine keeps polling, and takes a stale
			// machine's place once there is one.
			if n, ok := s.fullLogged.Tick(now); ok {
				s.d.Log.WarnContext(ctx, "discovered machines not kept: discovery.max_machines reached (logged once a minute)", "mac", rep.MAC, "max", cfg.Discovery.MaxMachines, "turned_away", n)
			}
			return Answer{Status: http.StatusOK, Body: render.IPXEWait(s.wait(cfg), "kickstand keeps no more discovered machines"), Refused: "discovered machines at their cap"}, nil
		case err != nil:
			return Answer{}, err
		case created:
			s.d.Log.InfoContext(ctx, "machine discovered", "mac", rep.MAC, "proof", rep.Proof, "addr", rep.Addr,
				"manufacturer", rep.Manufacturer, "product", rep.Product, "serial", rep.Serial, "asset", rep.Asset)
			if a, ok, err := s.byRule(ctx, cfg, rep); ok || err != nil {
				if err != nil {
					return Answer{}, err
				}
				return s.assigned(ctx, f, a)
			}
		}
	}
	return Answer{Status: http.StatusOK, Body: render.IPXEWait(s.wait(cfg), "waiting to be assigned")}, nil
}

// wait is the poll interval with its jitter.
func (s *Service) wait(cfg *inventory.Config) time.Duration {
	d := time.Duration(cfg.Discovery.Poll)
	if j := time.Duration(cfg.Discovery.Jitter); j > 0 {
		d += time.Duration(rand.Int64N(int64(j) + 1))
	}
	return d
}

// byRule assigns a newly discovered machine by the first rule it matches.
func (s *Service) byRule(ctx context.Context, cfg *inventory.Config, d store.Discovered) (*store.Discovered, bool, error) {
	for i, r := range cfg.Discovery.Rules {
		if !r.Matches(d.MAC, d.Serial, d.Product) {
			continue
		}
		name := r.HostName(d.MAC, d.Serial, d.Asset)
		if name == "" {
			s.d.Log.WarnContext(ctx, "discovery rule matches but makes no valid host name: not assigned", "rule", i, "name", r.Name, "mac", d.MAC)
			return nil, false, nil
		}
		if _, err := s.d.Install.AssignDiscovered(ctx, d.MAC, inventory.Host{Name: name, Profile: r.Profile}, install.ByRule(i)); err != nil {
			s.d.Log.WarnContext(ctx, "discovery rule could not assign the machine", "rule", i, "mac", d.MAC, "host", name, "err", err)
			return nil, false, nil
		}
		d.Host = name
		return &d, true, nil
	}
	return nil, false, nil
}

// assigned answers a machine assigned to a host: boot binds the poll's
// address to the host when it is the one the machine reported from; a poll
// from elsewhere claims another machine's MAC and gets nothing but the
// wait.
func (s *Service) assigned(ctx context.Context, f boot.Facts, d *store.Discovered) (Answer, error) {
	rec := s.d.Booter.Index.Host(d.Host)
	if rec == nil || rec.State != inventory.StateInstall {
		// Assigned by another process (the CLI): the index follows
		// the store within a second.
		return Answer{Status: http.StatusOK, Body: render.IPXEWait(time.Second, "assigned to "+d.Host+"; preparing")}, nil
	}
	if !s.d.Booter.BindDiscovered(f.ClientIP, d.Addr, d.MAC, rec) {
		return Answer{Status: http.StatusOK, Body: render.IPXEWait(s.wait(s.d.Config()), "waiting"),
			Refused: fmt.Sprintf("machine %s was assigned to %s from %s, not %s", d.MAC, d.Host, d.Addr, f.ClientIP)}, nil
	}
	return s.boot(ctx, f, d.Host)
}

// boot answers with the boot script the host gets now: the same decision
// as /boot.ipxe.
func (s *Service) boot(ctx context.Context, f boot.Facts, host string) (Answer, error) {
	p, err := s.d.Booter.BootSpec(ctx, f)
	if err != nil {
		return Answer{}, err
	}
	return Answer{Status: http.StatusOK, Body: render.IPXE(p), Host: host}, nil
}
