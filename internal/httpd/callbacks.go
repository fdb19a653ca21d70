package httpd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// maxLogUpload bounds an uploaded installer log; Anaconda's logs of a failed
// install are a few MB at most.
const maxLogUpload = 16 << 20

// callback handles POST /cb/{token}/built and /cb/{token}/failed from the
// installer's %post and %onerror. The token is the authentication: without
// the host's token the answer is a bare 404 and nothing changes (Cobbler's
// open nopxe endpoint is the mistake not to repeat).
//
// built moves the host to local, so every loader's next config boots the
// disk: boot-once with no reinstall loop. Repeating a callback with the
// same token changes nothing more and still succeeds (curl --retry may
// deliver it twice).
func (s *Server) callback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	setClass(w, "callback")
	what := r.PathValue("what")
	rec, err := s.Store.HostByToken(ctx, r.PathValue("token"))
	if errors.Is(err, store.ErrNotFound) || (what != "built" && what != "failed") {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, "callback", err)
		return
	}
	// A token opens callbacks while the host installs, and once more for
	// an idempotent repeat after it finished; an expired token of a host
	// still installing is refused like any other.
	if (rec.State == inventory.StateInstall && !rec.TokenValid(s.now())) || s.otherHost(r, rec.Name) {
		http.NotFound(w, r)
		return
	}
	f := Facts(r)
	switch what {
	case "built":
		if rec.State != inventory.StateInstall {
			fmt.Fprintln(w, "ok (already recorded)")
			return
		}
		if _, err := s.Store.SetState(ctx, rec.Name, inventory.StateLocal, "", time.Time{}); err != nil {
			s.fail(w, r, "callback built", err)
			return
		}
		s.record(store.Event{Host: rec.Name, Kind: "callback.built", Detail: "installer reported success", Data: map[string]any{"client": f.ClientIP.String()}})
		s.record(store.Event{Host: rec.Name, Kind: "state", Detail: "install -> local", Data: map[string]any{"from": "install", "to": "local", "by": "callback.built"}})
		s.Log.InfoContext(ctx, "install built", "host", rec.Name)
	case "failed":
		body, err := io.ReadAll(io.LimitReader(r.Body, maxLogUpload))
		if err != nil {
			http.Error(w, "reading the log: "+err.Error(), http.StatusBadRequest)
			return
		}
		path, err := s.keepLog(rec.Name, body)
		if err != nil {
			s.Log.ErrorContext(ctx, "could not keep the installer log", "host", rec.Name, "err", err)
		}
		s.record(store.Event{Host: rec.Name, Kind: "callback.failed", Detail: "installer reported failure",
			Data: map[string]any{"client": f.ClientIP.String(), "log": path, "log_tail": tail(body, 50)}})
		s.Log.ErrorContext(ctx, "install failed", "host", rec.Name, "log", path)
	}
	fmt.Fprintln(w, "ok")
}

func (s *Server) record(e store.Event) {
	if s.Events != nil {
		s.Events.Record(e)
	}
}

// keepLog stores an uploaded installer log under the data directory.
func (s *Server) keepLog(host string, b []byte) (string, error) {
	cfg := s.Config()
	dir := filepath.Join(cfg.Abs(cfg.Server.DataDir), "logs")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return "", err
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%s.log", host, s.now().UTC().Format("20060102T150405Z")))
	return p, os.WriteFile(p, b, 0o640)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(bytes.ToValidUTF8(b, []byte("?"))), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
