package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// NewLab makes a vmtest lab (server and client namespaces on a bridge)
// for a test that needs root, and removes it at cleanup.
func NewLab(t *testing.T, name string, opts ...vmtest.LabOption) *vmtest.Lab {
	t.Helper()
	vmtest.RequireRoot(t)
	vmtest.Need(t, "ip")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return lab
}

// Events collects a server's events (Options.OnEvent = Events.Add).
type Events struct {
	mu sync.Mutex
	ev []dhcpengine.Event
}

func (l *Events) Add(e dhcpengine.Event) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }

// Find returns the first event of kind that match accepts, or nil.
func (l *Events) Find(kind dhcpengine.EventKind, match func(*dhcpengine.Event) bool) *dhcpengine.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range l.ev {
		if l.ev[i].Kind == kind && match(&l.ev[i]) {
			e := l.ev[i]
			return &e
		}
	}
	return nil
}

func (l *Events) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.ev {
		fmt.Fprintf(&b, "%s mac=%s duid=%s host=%s ip=%v binding=%s boot=%q reason=%q\n", e.Kind, e.MAC, e.DUID, e.Host, e.IP, e.Binding, e.BootFile, e.Reason)
	}
	return b.String()
}

// Server is a family's server as its tests run it.
type Server interface {
	Serve(ctx context.Context) error
	Ready() <-chan struct{}
}

// ServeInLab runs s with its sockets in the lab's server namespace until
// the test's cleanup.
func ServeInLab(t *testing.T, lab *vmtest.Lab, s Server) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- vmtest.InNetns(lab.Srv, func() error { return s.Serve(ctx) }) }()
	select {
	case <-s.Ready():
	case err := <-errc:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-errc; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
}

// TestLog is a logger that writes to the test's log.
func TestLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// StartServer runs a family's server (made by newServer) in the lab's
// server namespace, on a SQLite store in a temporary directory that setup
// fills with the inventory it returns; tweak, when set, changes the config
// first. The server logs to the test.
func StartServer[S Server](t *testing.T, lab *vmtest.Lab, newServer func(dhcpengine.Options) (S, error),
	setup func(store.Store) (*inventory.Config, dhcpengine.Booter), tweak func(*inventory.Config)) (S, store.Store, *Events) {
	t.Helper()
	st, err := sqlstore.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg, booter := setup(st)
	if tweak != nil {
		tweak(cfg)
	}
	events := &Events{}
	s, err := newServer(dhcpengine.Options{Config: func() *inventory.Config { return cfg }, Booter: booter, Store: st,
		OnEvent: events.Add, Log: TestLog(t)})
	if err != nil {
		t.Fatal(err)
	}
	ServeInLab(t, lab, s)
	return s, st, events
}

// BuildKickstand builds the real binary, for tests that run (and kill) it.
func BuildKickstand(t *testing.T) string {
	t.Helper()
	vmtest.Need(t, "go")
	root, err := vmtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "kickstand")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kickstand")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kickstand: %v\n%s", err, out)
	}
	return bin
}

// WaitFile waits, bounded, until path contains substr.
func WaitFile(t *testing.T, path, substr string, d time.Duration) {
	t.Helper()
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if b, _ := os.ReadFile(path); bytes.Contains(b, []byte(substr)) {
			return
		}
		if time.Now().After(end) {
			b, _ := os.ReadFile(path)
			t.Fatalf("no %q in %s after %s:\n%s", substr, filepath.Base(path), d, LastLines(string(b), 30))
		}
	}
}

// LastLines is the end of a log.
func LastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// LabFor is NewLab for a test that needs tools (skipped without them) and
// at most d: the context ends then, or with the test.
func LabFor(t *testing.T, name string, opt vmtest.LabOption, d time.Duration, tools ...string) (*vmtest.Lab, context.Context) {
	t.Helper()
	lab := NewLab(t, name, opt)
	vmtest.Need(t, tools...)
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return lab, ctx
}
