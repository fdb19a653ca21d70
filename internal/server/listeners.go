package server

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// A reload applies what it can while serving and says what it cannot.
//
// The HTTP, TFTP and syslog listeners are moved by rebinding: the new
// socket is opened first, then the config that advertises it (boot
// script URLs, DHCP boot options, inst.syslog=) is swapped in, and only
// then is the old socket closed, so nothing is ever advertised before it
// listens. A socket that cannot be opened rejects the reload whole.
//
// The settings in fixedSettings are read once, when serve starts: the
// config in force keeps their running values, so what the servers decide
// never disagrees with how they run, and the reload logs "restart
// required for ...", which `kickstand doctor` and GET /api/v1/server show.

// Pending is a setting the file changed that takes effect only after a
// restart.
type Pending struct {
	Field   string `json:"field"`
	Running string `json:"running"`
	InFile  string `json:"in_file"`
}

func (p Pending) String() string {
	return fmt.Sprintf("%s (running: %s; file: %s)", p.Field, p.Running, p.InFile)
}

// Status is what a serving kickstand runs with, as doctor and the API show
// it: where it listens, what the file asks that needs a restart, and
// whether the file on disk is refused.
type Status struct {
	PID      int       `json:"pid"`
	Config   string    `json:"config"`
	LoadedAt time.Time `json:"loaded_at"` // when the config in force was loaded
	// Listening is the address of each listener: http, tftp, syslog.
	Listening       map[string]string `json:"listening"`
	RestartRequired []Pending         `json:"restart_required"`
	// Rejected is the last reload's refusal while the file stays refused.
	Rejected *Rejection `json:"rejected,omitempty"`
}

// Rejection is why the file on disk is not in force.
type Rejection struct {
	At    time.Time `json:"at"`
	Error string    `json:"error"`
}

// fixedSettings are what a running server cannot change: the store is
// open, and the DHCP servers' sockets, workers and limits are set up once.
var fixedSettings = []struct {
	field string
	get   func(*inventory.Config) any
	keep  func(dst, running *inventory.Config)
}{
	{"server.data_dir", func(c *inventory.Config) any { return c.Abs(c.Server.DataDir) },
		func(d, r *inventory.Config) { d.Server.DataDir = r.Server.DataDir }},
	{"server.store", func(c *inventory.Config) any { return store.Redact(c.Server.Store) },
		func(d, r *inventory.Config) { d.Server.Store = r.Server.Store }},
	{"dhcp.enabled", func(c *inventory.Config) any { return c.DHCP.Enabled },
		func(d, r *inventory.Config) { d.DHCP.Enabled = r.DHCP.Enabled }},
	{"dhcp.mode", func(c *inventory.Config) any { return c.DHCP.Mode },
		func(d, r *inventory.Config) { d.DHCP.Mode = r.DHCP.Mode }},
	{"dhcp.interfaces", func(c *inventory.Config) any { return c.DHCP.Interfaces },
		func(d, r *inventory.Config) { d.DHCP.Interfaces = r.DHCP.Interfaces }},
	{"dhcp.workers", func(c *inventory.Config) any { return c.DHCP.Workers },
		func(d, r *inventory.Config) { d.DHCP.Workers = r.DHCP.Workers }},
	{"dhcp.rate_limit", func(c *inventory.Config) any { return c.DHCP.RateLimit },
		func(d, r *inventory.Config) { d.DHCP.RateLimit = r.DHCP.RateLimit }},
	{"dhcp6.enabled", func(c *inventory.Config) any { return c.DHCP6.Enabled },
		func(d, r *inventory.Config) { d.DHCP6.Enabled = r.DHCP6.Enabled }},
	{"dhcp6.interfaces", func(c *inventory.Config) any { return c.DHCP6.Interfaces },
		func(d, r *inventory.Config) { d.DHCP6.Interfaces = r.DHCP6.Interfaces }},
	{"dhcp6.workers", func(c *inventory.Config) any { return c.DHCP6.Workers },
		func(d, r *inventory.Config) { d.DHCP6.Workers = r.DHCP6.Workers }},
	{"dhcp6.rate_limit", func(c *inventory.Config) any { return c.DHCP6.RateLimit },
		func(d, r *inventory.Config) { d.DHCP6.RateLimit = r.DHCP6.RateLimit }},
	// Transfers in flight would be cut by a restart of the TFTP server.
	{"tftp.max_transfers", func(c *inventory.Config) any { return c.TFTP.MaxTransfers },
		func(d, r *inventory.Config) { d.TFTP.MaxTransfers = r.TFTP.MaxTransfers }},
}

// restartRequired lists the fixed settings file changes from running, and
// the config to put in force: file with those settings as they run.
func restartRequired(running, file *inventory.Config) ([]Pending, *inventory.Config) {
	var out []Pending
	eff := file
	// A DHCP server that is off in both takes its settings when it is
	// enabled, which is a restart: nothing to say until then.
	off := map[string]bool{
		"dhcp.":  !running.DHCP.Enabled && !file.DHCP.Enabled,
		"dhcp6.": !running.DHCP6.Enabled && !file.DHCP6.Enabled,
	}
	for _, f := range fixedSettings {
		r, w := f.get(running), f.get(file)
		if reflect.DeepEqual(r, w) {
			continue
		}
		if f.field == "tftp.max_transfers" && !(running.TFTP.Enabled && file.TFTP.Enabled && running.TFTP.Listen == file.TFTP.Listen) {
			continue // a TFTP server the reload starts takes the file's
		}
		if family, _, _ := strings.Cut(f.field, "."); !off[family+"."] {
			out = append(out, Pending{Field: f.field, Running: show(r), InFile: show(w)})
		}
		if eff == file {
			c := *file
			eff = &c
		}
		f.keep(eff, running)
	}
	return out, eff
}

func show(v any) string {
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}

// listenerNames are the listeners a reload moves, in the order they open.
var listenerNames = []string{"http", "tftp", "syslog"}

// listenAddr is where cfg wants a listener ("" for off).
func listenAddr(name string, cfg *inventory.Config) string {
	switch name {
	case "http":
		return cfg.Server.HTTP
	case "tftp":
		if cfg.TFTP.Enabled {
			return cfg.TFTP.Listen
		}
	case "syslog":
		if cfg.Syslog.Enabled {
			return cfg.Syslog.Listen
		}
	}
	return ""
}

// opener opens a listener's sockets on addr, set up as cfg says, and
// returns what serves them until ctx ends.
type opener func(ctx context.Context, addr string, cfg *inventory.Config) (serve func() error, err error)

// slot is one running listener.
type slot struct {
	addr    string
	stop    context.CancelFunc
	stopped chan struct{} // closed when its server has returned
}

func (s *slot) stopWait() {
	s.stop()
	<-s.stopped
}

// listeners are serve's movable listeners. Only reload (under the
// instance's lock) and Serve's start touch them.
type listeners struct {
	ctx   context.Context
	run   func(name string, f func() error)
	open  map[string]opener
	slots map[string]*slot
	cur   *inventory.Config // what the open slots were set up with
}

func (l *listeners) start(name, addr string, cfg *inventory.Config) (*slot, error) {
	ctx, cancel := context.WithCancel(l.ctx)
	serve, err := l.open[name](ctx, addr, cfg)
	if err != nil {
		cancel()
		return nil, err
	}
	s := &slot{addr: addr, stop: cancel, stopped: make(chan struct{})}
	l.run(name, func() error {
		defer close(s.stopped)
		err := serve()
		if ctx.Err() != nil {
			return nil // stopped by a reload, or by the end of serve
		}
		return err
	})
	return s, nil
}

// move is one listener's change in a reload.
type move struct {
	name     string
	old, new *slot
	// oldGone: the old listener had to close first (the new one wants its
	// port), so undoing the move reopens it.
	oldGone bool
}

// prepare opens the listeners cfg wants that are not open yet, before cfg
// is put in force. It returns commit, which closes the listeners cfg no
// longer wants (after cfg is in force), and undo, which puts everything
// back as it was (when the reload fails later).
func (l *listeners) prepare(cfg *inventory.Config) (commit, undo func(), err error) {
	var moves []move
	undo = func() {
		for _, m := range moves {
			if m.new != nil {
				m.new.stopWait()
			}
			if m.oldGone {
				s, err := l.start(m.name, m.old.addr, l.cur)
				if err != nil {
					delete(l.slots, m.name) // said by the caller's error
					continue
				}
				l.slots[m.name] = s
			}
		}
	}
	for _, name := range listenerNames {
		want, cur := listenAddr(name, cfg), l.slots[name]
		if cur == nil && want == "" || cur != nil && cur.addr == want {
			continue
		}
		m := move{name: name, old: cur}
		if want != "" {
			m.new, err = l.start(name, want, cfg)
			if err != nil && cur != nil && samePort(cur.addr, want) {
				// ":69" to "192.0.2.1:69": the old socket holds the port.
				cur.stopWait()
				m.oldGone = true
				m.new, err = l.start(name, want, cfg)
			}
			if err != nil {
				m.new = nil
				moves = append(moves, m)
				undo()
				return nil, nil, fmt.Errorf("%s: cannot listen on %s: %w (still listening on %s)", listenField(name), want, err, orOff(cur))
			}
		}
		moves = append(moves, m)
	}
	commit = func() {
		l.cur = cfg
		for _, m := range moves {
			if m.new != nil {
				l.slots[m.name] = m.new
			} else {
				delete(l.slots, m.name)
			}
			if m.old != nil && !m.oldGone {
				m.old.stop() // in-flight requests finish; it accepts no more
			}
		}
	}
	return commit, undo, nil
}

func listenField(name string) string {
	if name == "http" {
		return "server.http"
	}
	return name + ".listen"
}

func orOff(s *slot) string {
	if s == nil {
		return "nothing: off"
	}
	return s.addr
}

func samePort(a, b string) bool {
	_, pa, err1 := net.SplitHostPort(a)
	_, pb, err2 := net.SplitHostPort(b)
	return err1 == nil && err2 == nil && pa == pb
}

func (l *listeners) addrs() map[string]string {
	out := map[string]string{}
	for n, s := range l.slots {
		out[n] = s.addr
	}
	return out
}

// StatusFile is where a serving kickstand keeps its Status, for doctor:
// the store's directory (or, with a PostgreSQL store, data_dir).
func StatusFile(cfg *inventory.Config, o Options) string {
	spec := StoreSpec(cfg, o)
	if spec == "-" {
		return ""
	}
	if store.IsPostgres(spec) {
		spec = cfg.Abs(cfg.Server.DataDir)
	}
	return filepath.Join(spec, "serve-status.json")
}

// ReadStatus reads a serving kickstand's status; os.ErrNotExist when none
// is serving from that data directory.
func ReadStatus(path string) (*Status, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var s Status
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &s, nil
}

// Status is the instance's status now.
func (in *Instance) Status() Status {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.statusLocked()
}

func (in *Instance) statusLocked() Status {
	s := Status{PID: os.Getpid(), Config: in.Path, LoadedAt: in.loadedAt, RestartRequired: in.pending, Rejected: in.rejected, Listening: map[string]string{}}
	if in.live != nil {
		s.Listening = in.live.addrs()
	}
	if s.RestartRequired == nil {
		s.RestartRequired = []Pending{}
	}
	return s
}

// writeStatus saves the status for doctor (atomically: doctor may read
// at any moment). Only a serving instance has one.
func (in *Instance) writeStatus() {
	if in.live == nil || in.statusFile == "" {
		return
	}
	b, _ := json.MarshalIndent(in.statusLocked(), "", "  ")
	tmp := in.statusFile + ".tmp"
	err := os.WriteFile(tmp, append(b, '\n'), 0o644)
	if err == nil {
		err = os.Rename(tmp, in.statusFile)
	}
	if err != nil {
		in.Log.Warn("cannot save the serve status for doctor", "err", err)
	}
}

// reject records a refused reload, logging it once per distinct refusal:
// a watcher sees the same broken file again and again.
func (in *Instance) reject(err error) {
	msg := err.Error()
	if in.rejected != nil && in.rejected.Error == msg {
		in.Log.Debug("reload rejected again; the file is unchanged", "path", in.Path)
		return
	}
	in.Log.Error("reload rejected; keeping the previous config", "err", err)
	in.rejected = &Rejection{At: time.Now(), Error: msg}
	in.writeStatus()
}

// fieldsOf names the fields of pending settings, for a log line.
func fieldsOf(p []Pending) string {
	names := make([]string, len(p))
	for i := range p {
		names[i] = p[i].Field
	}
	return strings.Join(names, ", ")
}
