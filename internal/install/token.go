package install

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Refusal is why a token's request was refused. It wraps ErrNotFound: the
// client gets a bare 404 that says nothing about which hosts exist, and
// the reason goes to the timeline and the log.
type Refusal struct{ Why string }

func (r *Refusal) Error() string { return "refused: " + r.Why }
func (r *Refusal) Unwrap() error { return ErrNotFound }

// Errors the transports turn into status codes.
var (
	ErrNotFound = errors.New("not found")         // 404
	ErrLimited  = errors.New("too many requests") // 429
	// ErrReported: this install's failure was already reported (409).
	ErrReported = errors.New("the failure of this install was already reported")
)

// Reasons for refusals.
const (
	WhyUnknownToken = "no host holds this token"
	WhyNotInstall   = "the host is not in install"
	WhyExpired      = "the build token expired"
	WhyWrongAddress = "the request comes from an address that is not the host's"
)

// Request is a request made with a build token, as the network shows it.
type Request struct {
	Token  string
	Client netip.Addr // the peer address
	Server netip.Addr // the local address the request arrived on
}

// holder returns the host a token's request is for, checking on every use
// that the host is in install, that the token has not expired, and that
// the request comes from the host itself (Booter.IdentifyAddr: a static
// address, a lease of one of its MACs or DUIDs, a menu choice). The token
// is a secret, but boot configs carry it, so the address check backs it
// up; server.token_any_address turns the check off.
func (s *Service) holder(ctx context.Context, req Request) (*inventory.HostRecord, error) {
	b := s.d.Booter
	rec := b.Index.ByToken(req.Token)
	if rec == nil && req.Token != "" {
		// Minted by another server sharing the store, not followed yet.
		r, err := s.d.Store.HostByToken(ctx, req.Token)
		switch {
		case errors.Is(err, store.ErrNotFound):
		case err != nil:
			return nil, err
		default:
			b.Index.Put(r)
			rec = r
		}
	}
	switch {
	case rec == nil:
		return nil, &Refusal{WhyUnknownToken}
	case rec.State != inventory.StateInstall:
		return nil, &Refusal{WhyNotInstall}
	case !rec.TokenValid(s.now()):
		return nil, &Refusal{WhyExpired}
	}
	if !s.d.Config().Server.TokenAnyAddress {
		id, err := b.IdentifyAddr(ctx, req.Client)
		if err != nil {
			return nil, err
		}
		if id.Host == nil || id.Host.Name != rec.Name {
			return nil, &Refusal{WhyWrongAddress}
		}
	}
	return rec, nil
}

// Callback outcomes, in the words the installer's curl prints.
const (
	Recorded        = "ok"
	AlreadyRecorded = "ok (already recorded)"
)

// maxLogUpload bounds an uploaded installer log (Anaconda's logs of a failed
// install are a few MB at most); maxTailBytes bounds the part of it kept in
// the timeline event, which every host listing reads.
const (
	maxLogUpload = 4 << 20
	maxTailBytes = 8 << 10
	tailLines    = 50
)

// Callback handles /cb/<token>/built and /cb/<token>/failed from the
// installer's %post and %onerror. The token is the authentication, backed
// by the address check; without both the answer is ErrNotFound and
// nothing changes (Cobbler's open nopxe endpoint is the mistake not to
// repeat).
//
// built moves the host to local, which clears its token: every loader's
// next config boots the disk (boot-once, no reinstall loop), and the old
// kickstart URL stops working. A repeat of a built callback that already
// took effect (curl --retry after a lost answer) is answered "ok (already
// recorded)" from memory, changing nothing. failed is accepted once per
// install, its upload bounded in bytes and in what the timeline keeps.
func (s *Service) Callback(ctx context.Context, req Request, what string, body io.Reader) (string, error) {
	if !s.cbs.Allow(req.Client.String(), s.now()) {
		return "", ErrLimited
	}
	if what != "built" && what != "failed" {
		return "", &Refusal{"no such callback"}
	}
	rec, err := s.holder(ctx, req)
	if err != nil {
		if host, ok := s.done.get(req.Token, s.now()); ok && what == "built" && errors.Is(err, ErrNotFound) && s.sameHost(ctx, req, host) {
			return AlreadyRecorded, nil
		}
		return "", err
	}
	cause := Cause{Kind: "callback", Who: req.Client.String()}
	switch what {
	case "built":
		s.record(ctx, store.Event{Host: rec.Name, At: s.now(), Kind: "callback.built", Detail: "installer reported success",
			Data: map[string]any{"client": req.Client.String()}})
		if _, err := s.transition(ctx, rec.Name, inventory.StateLocal, cause, req.Token); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return "", &Refusal{WhyNotInstall}
			}
			return "", err
		}
		s.done.put(req.Token, rec.Name, s.now().Add(time.Hour))
	case "failed":
		if !s.failed.put(req.Token, rec.Name, rec.TokenExpires) {
			return "", ErrReported
		}
		b, err := io.ReadAll(io.LimitReader(body, maxLogUpload))
		if err != nil {
			return "", fmt.Errorf("reading the installer log: %w", err)
		}
		path, err := s.keepLog(rec.Name, b)
		if err != nil {
			s.d.Log.ErrorContext(ctx, "could not keep the installer log", "host", rec.Name, "err", err)
		}
		s.record(ctx, store.Event{Host: rec.Name, At: s.now(), Kind: "callback.failed", Detail: "installer reported failure",
			Data: map[string]any{"client": req.Client.String(), "log": path, "log_bytes": len(b), "log_tail": tail(b)}})
		s.d.Log.ErrorContext(ctx, "install failed", "host", rec.Name, "log", path)
	}
	return Recorded, nil
}

func (s *Service) sameHost(ctx context.Context, req Request, host string) bool {
	if s.d.Config().Server.TokenAnyAddress {
		return true
	}
	return s.HostOf(ctx, req.Client) == host
}

// keepLog stores an uploaded installer log under the data directory.
func (s *Service) keepLog(host string, b []byte) (string, error) {
	cfg := s.d.Config()
	dir := filepath.Join(cfg.Abs(cfg.Server.DataDir), "logs")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%s.log", host, s.now().UTC().Format("20060102T150405Z")))
	return p, os.WriteFile(p, b, 0o640)
}

// tail is the last lines of an installer log, at most maxTailBytes.
func tail(b []byte) string {
	if len(b) > maxTailBytes {
		b = b[len(b)-maxTailBytes:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("?"))), "\n"), "\n")
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	return strings.Join(lines, "\n")
}

// recent is a small bounded memory of tokens (finished installs, reported
// failures). It forgets on restart, which only means one more upload or a
// 404 for a late repeat.
type recent struct {
	mu sync.Mutex
	m  map[string]recentEntry
}

type recentEntry struct {
	host  string
	until time.Time
}

const maxRecent = 4096

// put remembers token until then; false if it was already remembered.
func (r *recent) put(token, host string, until time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[string]recentEntry{}
	}
	if _, ok := r.m[token]; ok {
		return false
	}
	if len(r.m) >= maxRecent {
		now := time.Now()
		for k, e := range r.m {
			if now.After(e.until) {
				delete(r.m, k)
			}
		}
		if len(r.m) >= maxRecent {
			clear(r.m)
		}
	}
	r.m[token] = recentEntry{host, until}
	return true
}

func (r *recent) get(token string, now time.Time) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[token]
	if !ok || now.After(e.until) {
		return "", false
	}
	return e.host, true
}
