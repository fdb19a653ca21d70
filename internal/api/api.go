// Package api is kickstand's REST API under /api/v1: hosts with their
// install diagnosis, profiles, distros, state changes, the timeline and a
// live event stream. The web UI and scripts use the same API.
//
// Every route, read or write, says in one table who may call it; the same
// table builds the router and is checked against the OpenAPI document, so
// the two cannot drift apart.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/timeline"
)

// Prefix is where the API is mounted.
const Prefix = "/api/v1"

// Deps is what the API needs from the running server.
type Deps struct {
	Store store.Store
	// Config is the config in force. Nothing in it changes the API yet
	// (the open-reads switch comes through OpenReads); it may be nil.
	Config func() *inventory.Config
	// Events feeds the live stream and the unknown-clients view. nil:
	// the stream polls the store and there is no such view.
	Events *timeline.Recorder
	// Lifecycle changes host state; it is the only writer of state
	// (install.Service).
	Lifecycle Lifecycle
	Now       func() time.Time
	Log       *slog.Logger
	// OpenReads reports whether GET routes may be called without a token
	// (config server.api_open_reads). nil means reads need a token too.
	OpenReads func() bool
	// Server reports the serving instance's status (listeners, settings
	// pending a restart, a refused file): GET /server. nil: not serving.
	Server func() any
	// Heartbeat is how often the event stream sends a keepalive comment
	// and re-reads the store; 0 means 15 s.
	Heartbeat time.Duration
}

// Lifecycle is what the API asks of the install lifecycle.
type Lifecycle interface {
	SetState(ctx context.Context, host, state string, by install.Cause) (*inventory.HostRecord, error)
	AddHost(ctx context.Context, h inventory.Host, by install.Cause) (*inventory.HostRecord, error)
	EditHost(ctx context.Context, h inventory.Host, by install.Cause) (*inventory.HostRecord, error)
	RemoveHost(ctx context.Context, name string, by install.Cause) error
	SaveProfile(ctx context.Context, p inventory.Profile, create bool, by install.Cause) error
	SaveDistro(ctx context.Context, d inventory.Distro, create bool, by install.Cause) error
	RemoveProfile(ctx context.Context, name string, by install.Cause) error
	RemoveDistro(ctx context.Context, name string, by install.Cause) error
	Preview(ctx context.Context, r install.PreviewRequest) (install.Preview, error)
}

// access says who may call a route.
type access int

const (
	public access = iota // anyone: the API's own description
	read                 // a token, unless reads are open
	write                // always a token
)

type route struct {
	method string
	path   string // below Prefix, in ServeMux syntax
	access access
	h      func(*api, http.ResponseWriter, *http.Request, string)
}

// routes is the API. The handler's last argument is the name of the API
// token that authenticated the call ("" when none did).
func routes() []route {
	return []route{
		{"GET", "/openapi.json", public, (*api).openapi},
		{"GET", "/whoami", public, (*api).whoami},
		{"GET", "/hosts", read, (*api).hosts},
		{"POST", "/hosts", write, (*api).addHost},
		{"GET", "/hosts/{name}", read, (*api).host},
		{"PATCH", "/hosts/{name}", write, (*api).editHost},
		{"DELETE", "/hosts/{name}", write, (*api).removeHost},
		{"GET", "/hosts/{name}/render/{kind}", read, (*api).render},
		{"GET", "/hosts/{name}/timeline", read, (*api).timeline},
		{"POST", "/hosts/{name}/build", write, (*api).build},
		{"POST", "/hosts/{name}/state", write, (*api).setState},
		{"GET", "/profiles", read, (*api).profiles},
		{"POST", "/profiles", write, (*api).addProfile},
		{"PATCH", "/profiles/{name}", write, (*api).editProfile},
		{"DELETE", "/profiles/{name}", write, (*api).removeProfile},
		{"GET", "/distros", read, (*api).distros},
		{"POST", "/distros", write, (*api).addDistro},
		{"PATCH", "/distros/{name}", write, (*api).editDistro},
		{"DELETE", "/distros/{name}", write, (*api).removeDistro},
		{"GET", "/events", read, (*api).events},
		{"GET", "/events/stream", read, (*api).stream},
		{"GET", "/unknown", read, (*api).unknown},
		{"GET", "/server", read, (*api).server},
	}
}

type api struct {
	d Deps
	// changed wakes this API's event streams after a state change, which
	// the store may have recorded without the recorder knowing.
	changed notifier
}

// notifier wakes every listener without blocking the waker.
type notifier struct {
	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

func (n *notifier) listen() (<-chan struct{}, func()) {
	c := make(chan struct{}, 1)
	n.mu.Lock()
	if n.subs == nil {
		n.subs = map[chan struct{}]struct{}{}
	}
	n.subs[c] = struct{}{}
	n.mu.Unlock()
	return c, func() {
		n.mu.Lock()
		delete(n.subs, c)
		n.mu.Unlock()
	}
}

func (n *notifier) notify() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for c := range n.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Handler serves the API at Prefix (mount it at Prefix + "/").
func Handler(d Deps) http.Handler {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	if d.Heartbeat <= 0 {
		d.Heartbeat = 15 * time.Second
	}
	a := &api{d: d}
	mux := http.NewServeMux()
	byPath := map[string][]route{}
	var paths []string
	for _, rt := range routes() {
		if byPath[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		byPath[rt.path] = append(byPath[rt.path], rt)
	}
	sort.Strings(paths)
	for _, p := range paths {
		mux.Handle(Prefix+p, a.dispatch(byPath[p]))
	}
	mux.HandleFunc(Prefix+"/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such API route: "+r.URL.Path)
	})
	return mux
}

// dispatch picks the route for the method itself, so that a wrong method
// gets a JSON 405 like every other API error.
func (a *api) dispatch(rs []route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, rt := range rs {
			allow = append(allow, rt.method)
			if rt.method == r.Method || (rt.method == "GET" && r.Method == "HEAD") {
				who, ok := a.authorize(w, r, rt.access)
				if !ok {
					return
				}
				w.Header().Set("Cache-Control", "no-store")
				rt.h(a, w, r, who)
				return
			}
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed here; use "+strings.Join(allow, " or "))
	})
}

type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		code, b = http.StatusInternalServerError, []byte(`{"error":"internal error: encoding the answer"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

// fail answers a store or build failure. A missing object is the caller's
// 404; anything else is logged with its detail and answered without it.
func (a *api) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, what+": not found")
		return
	}
	a.d.Log.ErrorContext(r.Context(), "api: "+what+" failed", "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error: "+what)
}

// server says what the running server listens on and what the file asks
// of it that needs a restart, so a reload that could not apply everything
// says so (kickstand doctor reads the same).
func (a *api) server(w http.ResponseWriter, r *http.Request, _ string) {
	if a.d.Server == nil {
		writeError(w, http.StatusNotFound, "not serving")
		return
	}
	writeJSON(w, http.StatusOK, a.d.Server())
}
