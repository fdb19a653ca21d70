package install

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/store"
)

// Kickstart is a rendered kickstart: rewritten for the host's platform and
// release, and linted for that release.
type Kickstart struct {
	Body     []byte
	Problems []kickstart.Problem
	Host     string
}

// Kickstart answers GET /ks/<token>: the host's kickstart, if the token's
// request passes holder's checks. The rendered, rewritten and linted text
// is cached per host and inputs, so a hit is one in-memory lookup plus the
// address check.
func (s *Service) Kickstart(ctx context.Context, req Request) (Kickstart, error) {
	rec, err := s.holder(ctx, req)
	if err != nil {
		return Kickstart{}, err
	}
	return s.kickstartFor(ctx, rec, req.Server)
}

// KickstartFallback answers GET /ks without a token, for hosts whose
// profile opted in (kickstart_by): the requester must be a host in install
// by its address, like every token's request; with "mac", the MAC Anaconda
// names in its X-RHN-Provisioning-MAC headers (inst.ks.sendmac) must also
// be one of that host's. A header alone never identifies anyone.
func (s *Service) KickstartFallback(ctx context.Context, client, server netip.Addr, headerMACs []string) (Kickstart, error) {
	id, err := s.d.Booter.IdentifyAddr(ctx, client)
	if err != nil {
		return Kickstart{}, err
	}
	rec := id.Host
	switch {
	case rec == nil:
		return Kickstart{}, &Refusal{WhyWrongAddress}
	case rec.State != inventory.StateInstall:
		return Kickstart{}, &Refusal{WhyNotInstall}
	case !rec.TokenValid(s.now()):
		return Kickstart{}, &Refusal{WhyExpired}
	}
	p := s.d.Booter.Index.Profile(rec.Profile)
	if p == nil {
		return Kickstart{}, &Refusal{"the host's profile is gone"}
	}
	byMAC := slices.ContainsFunc(headerMACs, func(m string) bool { return slices.Contains(rec.MACs, inventory.NormalMAC(m)) })
	if !slices.Contains(p.KickstartBy, "ip") && !(slices.Contains(p.KickstartBy, "mac") && byMAC) {
		return Kickstart{}, &Refusal{"the host's profile does not serve /ks without a token (kickstart_by)"}
	}
	return s.kickstartFor(ctx, rec, server)
}

func (s *Service) kickstartFor(ctx context.Context, rec *inventory.HostRecord, server netip.Addr) (Kickstart, error) {
	cfg := s.d.Config()
	key := ksKey{token: rec.Token, server: server.Unmap().WithZone("")}
	stamp := s.ks.templateStamp(s.d.Templates, cfg.Abs(cfg.Server.Templates), s.now())
	gen := s.d.Booter.Index.Gen()
	if e := s.ks.get(key); e != nil && e.updated.Equal(rec.UpdatedAt) && e.gen == gen && e.cfg == cfg && e.stamp == stamp {
		return e.ks, e.err
	}
	t, err := s.d.Booter.TargetByName(ctx, rec.Name)
	if err != nil {
		return Kickstart{}, err
	}
	t.Record = rec
	f := boot.Facts{Firmware: boot.FirmwareIPXE, Arch: boot.ArchNone, ServerIP: key.server, Family: 4}
	if key.server.Is6() {
		f.Family = 6
	}
	ks, err := s.renderKickstart(t, f)
	if err != nil {
		return Kickstart{}, err
	}
	var gateErr error
	if msgs, refuse := lintGate(t, ks); len(msgs) > 0 {
		detail := strings.Join(msgs, "; ")
		if !refuse {
			// Served anyway, as the profile asks; said loudly, per
			// host, once per rendering.
			s.d.Log.ErrorContext(ctx, "served a kickstart that fails lint (profile lint: warn)", "host", rec.Name, "release", t.Distro.Release, "problems", msgs)
			s.record(ctx, store.Event{Host: rec.Name, At: s.now(), Kind: "lint",
				Detail: "served a kickstart that fails lint for " + t.Distro.Release + " (lint: warn): " + detail})
		} else {
			s.d.Log.ErrorContext(ctx, "refused to serve a kickstart that fails lint", "host", rec.Name, "release", t.Distro.Release, "problems", msgs)
			s.record(ctx, store.Event{Host: rec.Name, At: s.now(), Kind: "lint",
				Detail: "kickstart not served: it fails lint for " + t.Distro.Release + ": " + detail + " (fix the template, or set lint: warn on profile " + t.Profile.Name + ")",
				Data:   map[string]any{"refused": true}})
			gateErr = &LintError{Host: rec.Name, Problems: msgs}
		}
	}
	s.ks.put(key, &ksEntry{ks: ks, err: gateErr, updated: rec.UpdatedAt, gen: gen, cfg: cfg, stamp: stamp})
	return ks, gateErr
}

// lintGate says whether a rendered kickstart fails lint (its errors) and
// whether that keeps it from being served: unless its profile says
// lint: warn, it does.
func lintGate(t *boot.Target, ks Kickstart) (msgs []string, refuse bool) {
	if !kickstart.HasErrors(ks.Problems, false) {
		return nil, false
	}
	for _, pr := range ks.Problems {
		msgs = append(msgs, pr.String())
	}
	return msgs, t.Profile.Lint != "warn"
}

// LintError is a kickstart refused because it fails lint for its host's
// release (the profile's lint is not "warn"). The transports answer 503:
// the install can go on once the template is fixed, with no restart.
type LintError struct {
	Host     string
	Problems []string
}

func (e *LintError) Error() string {
	return fmt.Sprintf("kickstart for %s fails lint: %s", e.Host, strings.Join(e.Problems, "; "))
}

// renderKickstart is the one rendering of a kickstart, for the server and
// for previews alike.
func (s *Service) renderKickstart(t *boot.Target, f boot.Facts) (Kickstart, error) {
	p := boot.Decide(f, s.d.Booter.InputsFor(f, t))
	cfg := s.d.Config()
	b, probs, err := s.d.Templates.Kickstart(cfg.Abs(cfg.Server.Templates), t, p)
	if err != nil {
		return Kickstart{}, err
	}
	return Kickstart{Body: b, Problems: probs, Host: t.Record.Name}, nil
}

// ksCache holds rendered kickstarts of hosts in install. An entry is good
// while the host record (its updated_at), the profiles and distros (the
// index generation), the config and the template files are those it was
// rendered from. Bounded: past maxKickstarts it starts afresh.
type ksCache struct {
	mu      sync.Mutex
	m       map[ksKey]*ksEntry
	stamp   string
	checked time.Time
}

type ksKey struct {
	token  string
	server netip.Addr // URLs in the kickstart name the address it was fetched from
}

type ksEntry struct {
	ks      Kickstart
	err     error // the lint gate's refusal, cached with the text
	updated time.Time
	gen     uint64
	cfg     *inventory.Config
	stamp   string
}

const maxKickstarts = 8192

func (c *ksCache) get(k ksKey) *ksEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[k]
}

func (c *ksCache) put(k ksKey, e *ksEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxKickstarts {
		c.m = map[ksKey]*ksEntry{}
	}
	c.m[k] = e
}

// templateStamp is the templates directory's version, looked at no more
// than once a second: a template edit shows within a second, and a busy
// server does not stat the directory per request.
func (c *ksCache) templateStamp(t interface{ DirStamp(string) string }, dir string, now time.Time) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.checked) < time.Second && !now.Before(c.checked) {
		return c.stamp
	}
	c.stamp, c.checked = t.DirStamp(dir), now
	return c.stamp
}
