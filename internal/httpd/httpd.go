// Package httpd is kickstand's HTTP side: iPXE scripts, kickstarts, loader
// configs, distro trees and files. It decides nothing about booting; it
// parses each request into boot.Facts and asks the Booter.
package httpd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/render"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/timeline"
)

// Server holds what the handlers need.
type Server struct {
	Booter *boot.Booter
	Files  *bootfiles.Files
	Store  store.Store
	Config func() *inventory.Config
	Log    *slog.Logger
	Now    func() time.Time
	// Templates caches parsed kickstart templates (the zero value works).
	Templates render.Templates
	// Events receives an event per classified request (nil: none).
	Events *timeline.Recorder

	// API, UI and Metrics are mounted at /api/v1/, /ui/ and /metrics
	// when set. They are kept apart from the boot namespace: nothing a
	// machine fetches to boot lives under those paths.
	API, UI, Metrics http.Handler
}

// Handler returns the router with access logging.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /boot.ipxe", s.ipxe)
	mux.HandleFunc("GET /ks/{token}", s.kickstart)
	mux.HandleFunc("GET /ks", s.kickstartByFallback)
	mux.HandleFunc("POST /cb/{token}/{what}", s.callback)
	mux.HandleFunc("GET /", s.file)
	if s.API != nil {
		// One pattern per method: a method-less "/api/v1/" would
		// conflict with "GET /". The API answers wrong methods itself.
		for _, m := range []string{"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} {
			mux.Handle(m+" /api/v1/", s.API)
		}
	}
	if s.UI != nil {
		mux.Handle("GET /ui/", s.UI)
		mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
	}
	if s.Metrics != nil {
		mux.Handle("GET /metrics", s.Metrics)
	}
	return s.accessLog(refuseEscapes(mux))
}

// refuseEscapes answers 404 to any path with a ".." or empty segment
// (after percent-decoding), before ServeMux would redirect it to a cleaned
// path: a path that tries to climb gets nothing, not a hint.
func refuseEscapes(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, ok := bootfiles.CleanName(r.URL.Path); !ok && r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		if strings.Contains(r.URL.Path, "//") {
			clean, ok := bootfiles.HTTPPath(r.URL.Path)
			if !ok || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
				http.NotFound(w, r)
				return
			}
			r.URL.Path, r.URL.RawPath = clean, ""
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	if _, err := s.Store.Profiles(r.Context()); err != nil {
		http.Error(w, "store unavailable", http.StatusServiceUnavailable)
		return
	}
	w.Write([]byte("ok\n"))
}

// Facts parses an HTTP request into boot facts: the query carries what iPXE
// knows (mac, uuid, arch), the connection carries the addresses.
func Facts(r *http.Request) boot.Facts {
	q := r.URL.Query()
	f := boot.Facts{
		Firmware: boot.FirmwareIPXE,
		MAC:      inventory.NormalMAC(q.Get("mac")),
		UUID:     inventory.NormalUUID(q.Get("uuid")),
		Arch:     boot.ArchNone,
		Chosen:   q.Get("host"),
	}
	if a, err := strconv.ParseUint(q.Get("arch"), 10, 16); err == nil {
		f.Arch = boot.Arch(a)
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		f.ClientIP = ap.Addr().Unmap()
	}
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			f.ServerIP = ap.Addr().Unmap().WithZone("")
		}
	}
	f.Family = 4
	if f.ServerIP.Is6() {
		f.Family = 6
	}
	return f
}

func (s *Server) ipxe(w http.ResponseWriter, r *http.Request) {
	p, err := s.Booter.BootSpec(r.Context(), Facts(r))
	if err != nil {
		s.fail(w, r, "boot decision", err)
		return
	}
	setClass(w, "script")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(render.IPXE(p))
}

// kickstart serves a host's kickstart only under its unexpired build token.
// Anything else is a plain 404 that says nothing about which hosts exist.
func (s *Server) kickstart(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	setClass(w, "kickstart")
	rec, err := s.Store.HostByToken(ctx, r.PathValue("token"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && (rec.State != inventory.StateInstall || !rec.TokenValid(s.now()))) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, "kickstart", err)
		return
	}
	if s.otherHost(r, rec.Name) {
		http.NotFound(w, r)
		return
	}
	s.serveKickstart(w, r, rec)
}

// kickstartByFallback serves /ks without a token to a host whose profile
// opted into finding it by the MAC header Anaconda sends with
// inst.ks.sendmac, or by its static address (Foreman's fallbacks).
func (s *Server) kickstartByFallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	setClass(w, "kickstart")
	rec, by := s.fallbackHost(r)
	if rec == nil || rec.State != inventory.StateInstall {
		http.NotFound(w, r)
		return
	}
	p, err := s.Store.Profile(ctx, rec.Profile)
	if err != nil || !slices.Contains(p.KickstartBy, by) {
		http.NotFound(w, r)
		return
	}
	s.serveKickstart(w, r, rec)
}

func (s *Server) fallbackHost(r *http.Request) (*inventory.HostRecord, string) {
	ctx := r.Context()
	for name, vals := range r.Header {
		if !strings.HasPrefix(strings.ToLower(name), "x-rhn-provisioning-mac-") {
			continue
		}
		for _, v := range vals {
			f := strings.Fields(v) // "eth0 52:54:00:00:00:10"
			if len(f) == 0 {
				continue
			}
			if rec, err := s.Store.HostByMAC(ctx, f[len(f)-1]); err == nil {
				return rec, "mac"
			}
		}
	}
	if a := Facts(r).ClientIP; a.IsValid() {
		if rec, err := s.Store.HostByAddr(ctx, a); err == nil {
			return rec, "ip"
		}
	}
	return nil, ""
}

func (s *Server) serveKickstart(w http.ResponseWriter, r *http.Request, rec *inventory.HostRecord) {
	ctx := r.Context()
	t, err := s.Booter.TargetByName(ctx, rec.Name)
	if err != nil {
		s.fail(w, r, "kickstart", err)
		return
	}
	f := Facts(r)
	f.MAC, f.UUID, f.Chosen = "", "", ""
	p := boot.Decide(f, s.Booter.InputsFor(f, t))
	b, probs, err := s.Templates.Kickstart(s.Config().Abs(s.Config().Server.Templates), t, p)
	if err != nil {
		s.fail(w, r, "kickstart "+rec.Name, err)
		return
	}
	if kickstart.HasErrors(probs, false) {
		// Served anyway: the operator decides. Said loudly, per host.
		msgs := make([]string, len(probs))
		for i, pr := range probs {
			msgs[i] = pr.String()
		}
		s.Log.ErrorContext(ctx, "served a kickstart that fails lint", "host", rec.Name, "release", t.Distro.Release, "problems", msgs)
		s.record(store.Event{Host: rec.Name, Kind: "lint", Detail: "served a kickstart that fails lint for " + t.Distro.Release + ": " + strings.Join(msgs, "; ")})
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(b)
}

// otherHost reports whether a request for host's kickstart or callback
// comes from somewhere that is not that host. A token is the secret, but
// boot configs carry it, so an address check backs it up:
//   - the host's own static address is the host;
//   - when the host has a static address of the request's family, any
//     other address is not (installers use the rendered ip=);
//   - otherwise a DHCP lease for the address must name one of the host's
//     MACs; an address kickstand did not lease (proxyDHCP) is let through.
func (s *Server) otherHost(r *http.Request, host string) bool {
	f := Facts(r)
	a := f.ClientIP.Unmap()
	if !a.IsValid() || s.Config().Server.TokenAnyAddress {
		return false
	}
	h, err := s.Store.Host(r.Context(), host)
	if err != nil {
		return true
	}
	own4, has4 := h.Addr4()
	own6, has6 := h.Addr6()
	switch {
	case has4 && own4.Addr() == a, has6 && own6.Addr() == a:
		return false
	case a.Is4() && has4, a.Is6() && has6:
		return true
	}
	if other, err := s.Store.HostByAddr(r.Context(), a); err == nil && other.Name != host {
		return true
	}
	if a.Is4() {
		if l, err := s.Store.Lease(r.Context(), a); err == nil && l.MAC != "" {
			return !slices.Contains(h.MACs, l.MAC)
		}
	}
	return false
}

func (s *Server) file(w http.ResponseWriter, r *http.Request) {
	f := Facts(r)
	file, kind, err := s.Files.Open(r.Context(), bootfiles.Request{Name: r.URL.Path, Client: f.ClientIP, Local: f.ServerIP})
	setClass(w, Class(kind, r.URL.Path))
	if bootfiles.IsNotFound(err) {
		http.NotFound(w, r)
		return
	}
	if err != nil {
		s.fail(w, r, "file", err)
		return
	}
	defer file.Close()
	// ServeContent handles Range and always sends Content-Length, which
	// iPXE needs to download at full speed.
	http.ServeContent(w, r, r.URL.Path, file.ModTime(), file)
}

func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	s.Log.ErrorContext(r.Context(), what+" failed", "path", redact(r.URL.Path), "err", err)
	http.Error(w, "internal error: "+what, http.StatusInternalServerError)
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	class  string // what was asked for, for the timeline
}

// Unwrap lets http.ResponseController reach the connection's writer, so
// the API's event stream can flush through the access log.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func setClass(w http.ResponseWriter, c string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.class = c
	}
}

// Class names what a served file is, in the words the timeline and the
// diagnosis use.
func Class(k bootfiles.Kind, path string) string {
	switch k {
	case "":
		return "file"
	case bootfiles.KindRepo:
		switch {
		case strings.HasSuffix(path, ".rpm"):
			return "package"
		case strings.Contains(path, "/repodata/") || strings.HasSuffix(path, "treeinfo"):
			return "repodata"
		case strings.HasSuffix(path, "updates.img"):
			return "updates"
		}
		return "file"
	}
	return string(k)
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom keeps sendfile on the fast path for large files.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		s.Log.LogAttrs(r.Context(), slog.LevelInfo, "http",
			slog.String("remote", r.RemoteAddr), slog.String("method", r.Method),
			slog.String("path", redact(r.URL.Path)), slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes), slog.Duration("dur", time.Since(start)))
		if sw.class != "" && s.Events != nil {
			f := Facts(r)
			s.Events.Record(store.Event{Kind: "http." + sw.class, At: start, Detail: r.Method + " " + redact(r.URL.Path),
				Data: map[string]any{"path": redact(r.URL.Path), "status": sw.status, "bytes": sw.bytes, "family": f.Family,
					"client": f.ClientIP.String(), "mac": f.MAC, "duration_ms": time.Since(start).Milliseconds()}})
		}
	})
}

// redact hides build tokens: a kickstart URL in a log is a credential.
func redact(p string) string {
	if strings.HasPrefix(p, "/ks/") {
		return "/ks/<token>"
	}
	if rest, ok := strings.CutPrefix(p, "/cb/"); ok {
		_, what, _ := strings.Cut(rest, "/")
		return "/cb/<token>/" + what
	}
	return p
}

// Listen serves until ctx ends, then drains in-flight requests.
func Listen(ctx context.Context, addr string, h http.Handler, log *slog.Logger) (net.Addr, <-chan error, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, nil, err
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		done <- err
	}()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	return ln.Addr(), done, nil
}
