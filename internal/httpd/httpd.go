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
	"strconv"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/discovery"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/render"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/timeline"
)

// Server holds what the handlers need.
type Server struct {
	Booter *boot.Booter
	// Install answers everything a build token opens, and menu choices.
	Install *install.Service
	// Discovery answers the waiting room's polls (nil: 404).
	Discovery *discovery.Service
	Files     *bootfiles.Files
	Store     interface {
		Profiles(ctx context.Context) ([]inventory.Profile, error)
	}
	Log *slog.Logger
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
	mux.HandleFunc("GET /discover", s.discover) // render.DiscoveryPath
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

// refuseEscapes answers 404 to any path with a ".." segment (after
// percent-decoding), before ServeMux would redirect it to a cleaned path: a
// path that tries to climb gets nothing, not a hint. A GET with empty
// segments is routed under its clean path rather than redirected, because
// shim under UEFI HTTP boot asks for <dir>//grubx64.efi and follows no
// redirect (bootfiles.HTTPPath).
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

// Facts parses an HTTP request into boot facts: the connection carries the
// addresses, which identify the machine; the query carries what iPXE says
// of itself (arch, and a MAC that is reported, never trusted).
func Facts(r *http.Request) boot.Facts {
	q := r.URL.Query()
	f := boot.Facts{
		Firmware:   boot.FirmwareIPXE,
		ClaimedMAC: inventory.NormalMAC(q.Get("mac")),
		Arch:       boot.ArchNone,
	}
	if a, err := strconv.ParseUint(q.Get("arch"), 10, 16); err == nil {
		f.Arch = boot.Arch(a)
	}
	f.ClientIP = clientAddr(r)
	f.ServerIP = serverAddr(r)
	f.Family = 4
	if f.ServerIP.Is6() {
		f.Family = 6
	}
	return f
}

func clientAddr(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	return netip.Addr{}
}

func serverAddr(r *http.Request) netip.Addr {
	if la, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(la.String()); err == nil {
			return ap.Addr().Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

// ipxe answers iPXE's script request; ?host= is a choice from the menu,
// which the lifecycle honours only when the menu was this machine's.
func (s *Server) ipxe(w http.ResponseWriter, r *http.Request) {
	f := Facts(r)
	var p boot.Plan
	var err error
	if host := r.URL.Query().Get("host"); host != "" {
		p, err = s.Install.Choose(r.Context(), f, host)
	} else {
		p, err = s.Booter.BootSpec(r.Context(), f)
	}
	if err != nil {
		s.fail(w, r, "boot decision", err)
		return
	}
	setClass(w, "script")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(render.IPXE(p))
}

// discover answers a discovery report and waiting-room poll.
func (s *Server) discover(w http.ResponseWriter, r *http.Request) {
	setClass(w, "discovery")
	if s.Discovery == nil {
		http.NotFound(w, r)
		return
	}
	a, err := s.Discovery.Poll(r.Context(), Facts(r), r.URL.RawQuery)
	if err != nil {
		s.fail(w, r, "discovery", err)
		return
	}
	setHost(w, a.Host)
	if a.Refused != "" {
		setRefused(w, a.Refused)
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(a.Status)
	w.Write(a.Body)
}

// kickstart serves a host's kickstart under its build token. Anything
// else is a plain 404 that says nothing about which hosts exist; why it
// was refused goes to the timeline and the log.
func (s *Server) kickstart(w http.ResponseWriter, r *http.Request) {
	setClass(w, "kickstart")
	ks, err := s.Install.Kickstart(r.Context(), install.Request{Token: r.PathValue("token"), Client: clientAddr(r), Server: serverAddr(r)})
	s.serveKickstart(w, r, ks, err)
}

// kickstartByFallback serves /ks without a token to a host whose profile
// opted in (kickstart_by); see install.Service.KickstartFallback.
func (s *Server) kickstartByFallback(w http.ResponseWriter, r *http.Request) {
	setClass(w, "kickstart")
	var macs []string
	for name, vals := range r.Header {
		if !strings.HasPrefix(strings.ToLower(name), "x-rhn-provisioning-mac-") {
			continue
		}
		for _, v := range vals {
			if f := strings.Fields(v); len(f) > 0 { // "eth0 52:54:00:00:00:10"
				macs = append(macs, f[len(f)-1])
			}
		}
	}
	ks, err := s.Install.KickstartFallback(r.Context(), clientAddr(r), serverAddr(r), macs)
	s.serveKickstart(w, r, ks, err)
}

func (s *Server) serveKickstart(w http.ResponseWriter, r *http.Request, ks install.Kickstart, err error) {
	if err != nil {
		s.refuse(w, r, "kickstart", err)
		return
	}
	setHost(w, ks.Host)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Write(ks.Body)
}

// refuse answers a lifecycle error: a bare 404 for a refusal (its reason
// kept for the timeline), 429 or 409 for the limits, 500 otherwise.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ref *install.Refusal
	switch {
	case errors.As(err, &ref):
		setRefused(w, ref.Why)
		http.NotFound(w, r)
	case errors.Is(err, install.ErrLimited):
		setRefused(w, "rate limited")
		http.Error(w, "too many requests", http.StatusTooManyRequests)
	case errors.As(err, new(*install.LintError)):
		setRefused(w, "the kickstart fails lint")
		http.Error(w, "the kickstart fails lint for this host's release; see its timeline", http.StatusServiceUnavailable)
	case errors.Is(err, install.ErrReported):
		setRefused(w, err.Error())
		http.Error(w, err.Error(), http.StatusConflict)
	default:
		s.fail(w, r, what, err)
	}
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

type statusWriter struct {
	http.ResponseWriter
	status  int
	bytes   int64
	class   string // what was asked for, for the timeline
	host    string // the host it was served to, when the handler knows
	refused string // why it was refused, when it was
}

// Unwrap lets http.ResponseController reach the connection's writer, so
// the API's event stream can flush through the access log.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func setClass(w http.ResponseWriter, c string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.class = c
	}
}

func setHost(w http.ResponseWriter, h string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.host = h
	}
}

func setRefused(w http.ResponseWriter, why string) {
	if sw, ok := w.(*statusWriter); ok {
		sw.refused = why
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

// ReadFrom keeps sendfile on the fast path for files. Anything else (a
// small file already in memory) is written through the buffer, so headers
// and body leave together.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	src := r
	if lr, ok := r.(*io.LimitedReader); ok {
		src = lr.R
	}
	var n int64
	var err error
	if _, isFile := src.(interface{ Fd() uintptr }); isFile {
		n, err = io.Copy(w.ResponseWriter, r)
	} else {
		n, err = io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

func (s *Server) accessLog(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		// A boot request that went well is on its host's timeline (or in
		// the unknown clients' ring); the log says it only at debug level,
		// so a busy server does not write a line per file it serves.
		level := slog.LevelInfo
		if sw.class != "" && s.Events != nil && sw.status < 400 {
			level = slog.LevelDebug
		}
		s.Log.LogAttrs(r.Context(), level, "http",
			slog.String("remote", r.RemoteAddr), slog.String("method", r.Method),
			slog.String("path", redact(r.URL.Path)), slog.Int("status", sw.status),
			slog.Int64("bytes", sw.bytes), slog.Duration("dur", time.Since(start)))
		if sw.class != "" && s.Events != nil {
			f := Facts(r)
			data := map[string]any{"path": redact(r.URL.Path), "status": sw.status, "bytes": sw.bytes, "family": f.Family,
				"client": f.ClientIP.String(), "duration_ms": time.Since(start).Milliseconds()}
			detail := r.Method + " " + redact(r.URL.Path)
			if sw.refused != "" {
				data["refused"] = sw.refused
				detail += " refused: " + sw.refused
			}
			if f.ClaimedMAC != "" {
				data["claimed_mac"] = f.ClaimedMAC
			}
			// The host is whoever the address is (the recorder works it
			// out); a handler that served a host by token says so.
			s.Events.Record(store.Event{Kind: "http." + sw.class, Host: sw.host, At: start, Detail: detail, Data: data})
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
		// The whole request, body included: a body trickled in a byte
		// a second must not hold a connection for ever. Nothing a
		// client sends here is large (callbacks are bounded to 4 MiB).
		ReadTimeout:    60 * time.Second,
		IdleTimeout:    120 * time.Second,
		MaxHeaderBytes: 64 << 10,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelWarn),
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
