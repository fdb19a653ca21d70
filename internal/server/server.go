// Package server wires kickstand together: it loads the config, has the
// install lifecycle (internal/install) bring the store in step with it,
// reloads on SIGHUP or a file change, and runs the protocol servers. It
// holds the only mutable "current config" pointer, so a reload is one
// atomic swap and in-flight requests finish on the config they started
// with. It decides nothing itself.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/api"
	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/dhcp4"
	"github.com/kickstand/kickstand/internal/dhcp6"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/diagnose"
	"github.com/kickstand/kickstand/internal/fswatch"
	"github.com/kickstand/kickstand/internal/httpd"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/metrics"
	"github.com/kickstand/kickstand/internal/overlay"
	"github.com/kickstand/kickstand/internal/ratelimit"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
	"github.com/kickstand/kickstand/internal/syslog"
	"github.com/kickstand/kickstand/internal/tftp"
	"github.com/kickstand/kickstand/internal/timeline"
	"github.com/kickstand/kickstand/internal/webui"
)

// Instance is a loaded kickstand: config, store, the decision and the
// lifecycle.
type Instance struct {
	Path    string
	Store   store.Store
	Booter  *boot.Booter
	Install *install.Service
	Files   *bootfiles.Files
	Log     *slog.Logger
	// Events is the timeline recorder; Serve runs it.
	Events *timeline.Recorder
	// Stale is why the file is refused when Open fell back to the last
	// good inventory in the store (Options.LastGood); nil otherwise.
	Stale error

	cfg    atomic.Pointer[inventory.Config]
	mu     sync.Mutex // serialises reloads; guards the fields below
	loader *inventory.Loader
	strict bool // check that files exist (serve), or syntax only (render)
	// loaded is the config last loaded from the files. The config in
	// force differs from it in the settings pending a restart.
	loaded     *inventory.Config
	loadedAt   time.Time
	pending    []Pending
	rejected   *Rejection
	live       *listeners // nil unless serving
	statusFile string
}

// Options control Open.
type Options struct {
	// CheckFiles makes a missing kernel, initrd or template an error.
	CheckFiles bool
	// DataDir overrides the config's data directory. "-" means an
	// in-memory store (previews that must not write anything).
	DataDir string
	// Store overrides the config's store (a postgres:// URL or a directory).
	Store string
	// IfExists uses the store only if it exists, else an in-memory one:
	// previews show real states and tokens but never create files.
	IfExists bool
	// LastGood opens the store alone when the file is refused: the last
	// good inventory synced into it serves read-only commands and state
	// changes while the operator fixes the file, and Instance.Stale says
	// why. Nothing is synced from the file then.
	LastGood bool
	Log      *slog.Logger
}

// Open loads the config, opens the store and syncs the file into it. Bad
// config fails here, before anything listens.
func Open(ctx context.Context, path string, o Options) (*Instance, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	// The store is opened as the file is checked: its live profiles and
	// distros are names the file's hosts and profiles may use.
	var st store.Store
	loader := &inventory.Loader{Path: path}
	existed := false // whether st was there before Open
	openStore := func(c *inventory.Config) error {
		if st != nil {
			return nil
		}
		spec := StoreSpec(c, o)
		if existed = storeExists(spec) && spec != "-"; o.IfExists && !existed {
			spec = "-"
		}
		var err error
		if st, err = sqlstore.Open(ctx, spec); err != nil {
			return fmt.Errorf("store %s: %w", store.Redact(spec), err)
		}
		return nil
	}
	loader.Known = func(c *inventory.Config) (inventory.Known, error) {
		if err := openStore(c); err != nil {
			return inventory.Known{}, err
		}
		return install.LiveNames(ctx, st)
	}
	cfg, fileErr := load(loader, false, o.CheckFiles)
	if fileErr != nil && o.LastGood {
		// The store the file's server section names, if it can be read.
		if sc := inventory.ServerOnly(path); openStore(sc) == nil && existed {
			cfg = sc
		}
	}
	if cfg == nil {
		if st != nil {
			st.Close()
		}
		return nil, fileErr
	}
	if st == nil { // a file that names no live object never asked
		if err := openStore(cfg); err != nil {
			return nil, err
		}
	}
	in := &Instance{Path: path, Store: st, Log: o.Log, loader: loader, strict: o.CheckFiles,
		loaded: cfg, loadedAt: time.Now(), statusFile: StatusFile(cfg, o), Stale: fileErr}
	in.cfg.Store(cfg)
	in.Booter = boot.NewBooter(st, in.Config)
	in.Events = timeline.New(st, attributor{in}, in.Log)
	in.Install = install.New(install.Deps{Store: st, Booter: in.Booter, Config: in.Config, Publish: in.Events, Log: in.Log})
	in.Files = &bootfiles.Files{Booter: in.Booter, Chooser: in.Install, Store: st, Config: in.Config, Images: &overlay.Images{}}
	for _, w := range cfg.Warnings {
		in.Log.Warn("config", "warning", w)
	}
	if fileErr != nil {
		return in, nil // the store's inventory, as the last good file left it
	}
	if _, err := in.Install.SyncFile(ctx, cfg); err != nil {
		st.Close()
		return nil, err
	}
	return in, nil
}

// storeExists says whether a store spec names a store that was made
// before: a PostgreSQL URL always does, a directory when it holds one.
func storeExists(spec string) bool {
	if store.IsPostgres(spec) || spec == "-" {
		return true
	}
	_, err := os.Stat(filepath.Join(spec, "kickstand.db"))
	return err == nil
}

// attributor breaks the knot between the recorder (which asks the
// lifecycle who an address is) and the lifecycle (which publishes to the
// recorder).
type attributor struct{ in *Instance }

func (a attributor) HostOf(ctx context.Context, addr netip.Addr) string {
	return a.in.Install.HostOf(ctx, addr)
}

// StoreSpec is where the state lives: --store, else server.store (a
// postgres:// URL for several kickstand servers), else --data or
// server.data_dir (the embedded SQLite store).
func StoreSpec(cfg *inventory.Config, o Options) string {
	switch {
	case o.Store != "":
		return o.Store
	case o.DataDir != "":
		return o.DataDir
	case cfg.Server.Store != "":
		return cfg.Server.Store
	}
	return cfg.Abs(cfg.Server.DataDir)
}

// Config returns the config in force.
func (in *Instance) Config() *inventory.Config { return in.cfg.Load() }

// Close releases the store.
func (in *Instance) Close() error { return in.Store.Close() }

func load(l *inventory.Loader, reread, checkFiles bool) (*inventory.Config, error) {
	cfg, err := l.Load(reread)
	if err != nil {
		return nil, err
	}
	if checkFiles {
		if err := cfg.CheckFiles(); err != nil {
			return nil, err
		}
	}
	return cfg, nil
}

// Reload re-reads every config file. On any error the previous config and
// store contents stay in force and the error is returned (and logged).
func (in *Instance) Reload(ctx context.Context) error { return in.reload(ctx, true) }

// reload re-reads the files that changed (all of them if reread) and
// syncs to the store only the hosts that differ from the config in force.
// While serving, it moves the listeners the file moves and keeps the
// settings that need a restart as they run (see listeners.go).
func (in *Instance) reload(ctx context.Context, reread bool) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	t0 := time.Now()
	old, running := in.loaded, in.Config()
	cfg, err := load(in.loader, reread, in.strict)
	if err == nil && cfg == old {
		return nil // no file changed
	}
	if err != nil {
		in.reject(err)
		return err
	}
	eff, pending := cfg, []Pending(nil)
	commit, undo := func() {}, func() {}
	if in.live != nil {
		pending, eff = restartRequired(running, cfg)
		if commit, undo, err = in.live.prepare(eff); err != nil {
			in.reject(err)
			return err
		}
	}
	changed := inventory.ChangedHosts(old, cfg)
	if changed == nil {
		changed = []string{}
	}
	if !reflect.DeepEqual(old.DHCP6.DUIDs, cfg.DHCP6.DUIDs) {
		changed = nil // the host index is rebuilt whole
	}
	if _, err := in.Install.SyncChanged(ctx, eff, changed); err != nil {
		undo()
		in.reject(err)
		return err
	}
	// The new listeners are open: advertise them, then close the old.
	in.cfg.Store(eff)
	commit()
	in.loaded, in.loadedAt, in.pending, in.rejected = cfg, time.Now(), pending, nil
	in.writeStatus()
	in.Log.Info("config reloaded", "path", in.Path, "hosts", len(cfg.Hosts), "hosts_changed", len(changed), "took", time.Since(t0).Round(time.Millisecond))
	if len(pending) > 0 {
		in.Log.Warn("restart required for "+fieldsOf(pending)+"; running with the previous values until then", "pending", pending)
	}
	return nil
}

// Watch reloads on SIGHUP (sent on hup: every file is read again) and when
// the main file or a file in the hosts directory changes (inotify, or
// polling every `every` where inotify is unavailable: only the changed
// files are read).
func (in *Instance) Watch(ctx context.Context, hup <-chan os.Signal, every time.Duration) {
	for ctx.Err() == nil {
		paths := in.Config().WatchPaths()
		wctx, stop := context.WithCancel(ctx)
		changes := fswatch.Watch(wctx, paths, fswatch.Options{Entry: inventory.IsHostFile, Poll: every, Log: in.Log})
		in.reload(ctx, false) // an edit made before the watch began
		for ctx.Err() == nil && slices.Equal(paths, in.Config().WatchPaths()) {
			select {
			case <-ctx.Done():
			case <-hup:
				in.Reload(ctx)
			case files := <-changes:
				in.Log.Debug("config files changed", "files", files)
				in.reload(ctx, false)
			}
		}
		stop()
	}
}

// Serve runs the protocol servers until ctx ends. If any of them fails,
// the others are stopped and the first error is returned.
func (in *Instance) Serve(ctx context.Context, ready func(httpAddr net.Addr)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	rec := in.Events
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	m := metrics.New(in.Store)
	m.Attach(rec)
	wg.Add(1)
	go func() { defer wg.Done(); rec.Run(ctx) }()
	// Another kickstand server sharing the store changes hosts too.
	wg.Add(1)
	go func() { defer wg.Done(); in.Install.Follow(ctx, 500*time.Millisecond) }()

	// The listeners a reload can move; opened under the reload lock, so
	// a reload sees them all or none.
	var httpAddr net.Addr
	handler := in.HTTPServer(m).Handler()
	in.mu.Lock()
	cfg := in.Config()
	l := &listeners{ctx: ctx, run: run, slots: map[string]*slot{}, open: map[string]opener{
		"http": func(ctx context.Context, addr string, _ *inventory.Config) (func() error, error) {
			a, done, err := httpd.Listen(ctx, addr, handler, in.Log)
			if err != nil {
				return nil, err
			}
			httpAddr = a
			in.Log.Info("http listening", "addr", a.String())
			return func() error { return <-done }, nil
		},
		"tftp": func(ctx context.Context, addr string, cfg *inventory.Config) (func() error, error) {
			return in.openTFTP(ctx, rec, addr, cfg.TFTP.MaxTransfers)
		},
		"syslog": func(ctx context.Context, addr string, _ *inventory.Config) (func() error, error) {
			return in.openSyslog(ctx, rec, addr)
		},
	}, cur: cfg}
	for _, name := range listenerNames {
		if addr := listenAddr(name, cfg); addr != "" {
			s, err := l.start(name, addr, cfg)
			if err != nil {
				in.mu.Unlock()
				cancel()
				wg.Wait()
				return fmt.Errorf("%s: %w", name, err)
			}
			l.slots[name] = s
		}
	}
	in.live = l
	in.writeStatus()
	bound := httpAddr // a reload may move it; ready gets the first
	in.mu.Unlock()
	defer func() {
		in.mu.Lock()
		in.live = nil
		if in.statusFile != "" {
			os.Remove(in.statusFile) // no longer serving
		}
		in.mu.Unlock()
	}()

	if cfg.DHCP.Enabled {
		proxy := cfg.DHCP.Mode == "proxy"
		ds, err := dhcp4.New(dhcpengine.Options{Config: in.Config, Booter: in.Booter, Store: in.Store, Log: in.Log,
			OnEvent: func(e dhcpengine.Event) {
				if proxy {
					in.learn(e)
				}
				recordDHCP(rec, e)
			}})
		if err != nil {
			return fmt.Errorf("dhcp: %w", err)
		}
		if err := ds.Register(m.Registry()); err != nil {
			return err
		}
		in.Log.Info("dhcp serving", "mode", cfg.DHCP.Mode, "interfaces", cfg.DHCP.Interfaces)
		run("dhcp", func() error { return ds.Serve(ctx) })
	}
	if cfg.DHCP6.Enabled {
		ds6, err := dhcp6.New(dhcpengine.Options{Config: in.Config, Booter: in.Booter, Store: in.Store, Log: in.Log,
			OnEvent: func(e dhcpengine.Event) { recordDHCP(rec, e) }})
		if err != nil {
			return fmt.Errorf("dhcp6: %w", err)
		}
		if err := ds6.Register(m.Registry()); err != nil {
			return err
		}
		in.Log.Info("dhcp6 serving", "interfaces", cfg.DHCP6.Interfaces)
		run("dhcp6", func() error { return ds6.Serve(ctx) })
	}
	if ready != nil {
		ready(bound)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// HTTPServer is the HTTP side of this instance: boot files, kickstarts,
// callbacks, the API, the UI, and /metrics when m is not nil.
func (in *Instance) HTTPServer(m *metrics.Metrics) *httpd.Server {
	h := &httpd.Server{Booter: in.Booter, Install: in.Install, Files: in.Files, Store: in.Store, Log: in.Log, Events: in.Events,
		API: api.Handler(api.Deps{Store: in.Store, Config: in.Config, Events: in.Events, Lifecycle: in.Install, Log: in.Log,
			OpenReads: func() bool { return in.Config().Server.APIOpenReads },
			Server:    func() any { return in.Status() }}),
		UI: webui.Handler()}
	if m != nil {
		h.Metrics = m.Handler()
	}
	return h
}

// learn notes, in proxyDHCP mode, which address a known machine takes
// from the other DHCP server: its REQUEST names it, and its request on
// port 4011 comes from it. kickstand leases nothing then, so this is how
// its HTTP and TFTP requests are tied to the host.
func (in *Instance) learn(e dhcpengine.Event) {
	if !e.IP.IsValid() || e.MAC == "" || e.Binding != dhcpengine.Observed {
		return
	}
	in.Booter.Learn(e.IP, e.MAC, time.Now().Add(time.Duration(in.Config().Server.TokenTTL)))
}

// recordDHCP puts one step of a DHCP exchange, either family, on the
// timeline. It runs for every packet, so it builds the event in one pass.
func recordDHCP(rec *timeline.Recorder, e dhcpengine.Event) {
	var d strings.Builder
	d.Grow(128)
	d.WriteString(string(e.Kind))
	data := make(map[string]any, 8)
	data["family"], data["mac"], data["boot_file"] = e.Family, e.MAC, e.BootFile
	if e.Family == 6 {
		d.WriteString(" duid ")
		d.WriteString(e.DUID)
		data["duid"] = e.DUID
		if e.MAC != "" {
			d.WriteString(" mac ")
			d.WriteString(e.MAC)
		}
	} else {
		d.WriteString(" ")
		d.WriteString(e.MAC)
	}
	if e.IP.IsValid() {
		ip := e.IP.String()
		d.WriteString(" ")
		d.WriteString(ip)
		data["ip"] = ip
	}
	if e.BootFile != "" {
		d.WriteString(" boot ")
		d.WriteString(e.BootFile)
	}
	if e.Reason != "" {
		d.WriteString(" (")
		d.WriteString(e.Reason)
		d.WriteString(")")
	}
	if fw := firmwareOf(e.BootFile); fw != "" {
		data["firmware"] = fw
	}
	if e.Relay.IsValid() {
		data["relay"] = e.Relay.String()
	}
	rec.Record(store.Event{Kind: "dhcp." + string(e.Kind), At: e.Time, Host: e.Host, Detail: d.String(), Data: data})
}

// firmwareOf names the kind of client from the boot file it was given:
// only boot firmware and iPXE are handed one, an OS or installer is not,
// which is how the diagnosis tells a new network boot from the installer's
// own DHCP.
func firmwareOf(bootFile string) string {
	switch {
	case bootFile == "":
		return ""
	case strings.Contains(bootFile, "boot.ipxe"):
		return "ipxe"
	case strings.HasPrefix(bootFile, "http"):
		return "uefi-http"
	case strings.HasSuffix(bootFile, ".efi"):
		return "uefi"
	}
	return "bios"
}

// openSyslog opens the receiver of installer logs on UDP and TCP, which
// files each line under the host whose address sent it.
func (in *Instance) openSyslog(ctx context.Context, rec *timeline.Recorder, addr string) (func() error, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return nil, err
	}
	// An installer logs a few hundred lines a second at most; the limits
	// bound what a flood from one address, or from many, can make us do.
	srv := &syslog.Server{Log: in.Log, Limit: ratelimit.New(ratelimit.Limits{PerSource: 500, PerSourceBurst: 5000, Global: 5000, GlobalBurst: 20000})}
	handle := func(m syslog.Message) {
		rec.Record(store.Event{Kind: "syslog", At: m.Received, Detail: m.Text, Data: map[string]any{
			"severity": syslog.SeverityName(m.Severity), "facility": syslog.FacilityName(m.Facility),
			"app": m.App, "source": m.Source.String(), "client": m.Source.Addr().String(),
		}})
	}
	in.Log.Info("syslog listening", "addr", addr)
	return func() error {
		udp := make(chan error, 1)
		go func() { defer pc.Close(); udp <- srv.Serve(ctx, pc, handle) }()
		go func() { <-ctx.Done(); ln.Close() }()
		if err := srv.ServeStream(ctx, ln, handle); err != nil && ctx.Err() == nil {
			return err
		}
		return <-udp
	}, nil
}

// openTFTP opens the TFTP server's socket.
func (in *Instance) openTFTP(ctx context.Context, rec *timeline.Recorder, addr string, maxTransfers int) (func() error, error) {
	ts, err := tftp.New(tftp.Config{
		Opener: tftp.OpenerFunc(in.openTFTPFile), Logger: in.Log,
		MaxTransfers: maxTransfers, // fixed while this server runs
		OnTransfer:   func(ti tftp.TransferInfo) { in.recordTFTP(rec, ti) },
	})
	if err != nil {
		return nil, err
	}
	pc, err := tftp.Listen(addr)
	if err != nil {
		return nil, err
	}
	in.Log.Info("tftp listening", "addr", addr)
	return func() error { defer pc.Close(); return ts.Serve(ctx, pc) }, nil
}

// openTFTPFile serves the same namespace as HTTP over TFTP.
func (in *Instance) openTFTPFile(ctx context.Context, req tftp.Request) (tftp.File, error) {
	f, _, err := in.Files.Open(ctx, bootfiles.Request{Name: req.Path, Client: req.Client.Addr().Unmap(), Local: req.Local.Unmap()})
	if bootfiles.IsNotFound(err) {
		return nil, tftp.ErrNotFound
	}
	return f, err
}

func (in *Instance) recordTFTP(rec *timeline.Recorder, ti tftp.TransferInfo) {
	if ti.Write {
		return
	}
	name, _ := bootfiles.CleanName(ti.Name)
	class := "file"
	if _, ok := bootfiles.ParseConfigName(name); ok {
		class = "config"
	} else if bootfiles.IsLoader(name) {
		class = "loader"
	}
	detail := fmt.Sprintf("%s %d bytes in %s", ti.Name, ti.Bytes, ti.Duration.Round(time.Millisecond))
	switch {
	case ti.Probe:
		detail += " (size probe)"
	case ti.Aborted:
		detail += " (aborted by client)"
	case ti.Err != nil && !ti.Completed:
		detail += " (" + ti.Err.Error() + ")"
	}
	data := map[string]any{
		"file": ti.Name, "bytes": ti.Bytes, "duration_ms": ti.Duration.Milliseconds(), "completed": ti.Completed,
		"probe": ti.Probe, "class": class, "client": ti.Client.Addr().Unmap().String(), "blksize": ti.BlockSize, "windowsize": ti.WindowSize,
		"status": timeline.TFTPStatus(ti.Completed, ti.Probe, ti.Aborted, ti.Err),
	}
	if errors.Is(ti.Err, tftp.ErrBusy) {
		data["refused"] = "the server is busy (tftp.max_transfers transfers running)"
	}
	rec.Record(store.Event{Kind: "tftp.file", At: ti.Start, Detail: detail, Data: data})
}

// Diagnose says where a host (redacted as the API shows it: installer text
// quotes kickstart URLs and password hashes)'s install stands, from its timeline.
func (in *Instance) Diagnose(ctx context.Context, h *inventory.HostRecord) (diagnose.Diagnosis, error) {
	evs, err := in.Store.Events(ctx, h.Name, 0, 0)
	if err != nil {
		return diagnose.Diagnosis{}, err
	}
	return api.RedactDiagnosis(diagnose.ForHost(evs, time.Now(), h)), nil
}
