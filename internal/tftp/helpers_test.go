package tftp

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// helperEnv makes the test binary act as a TFTP server (see TestMain), so
// the netns tests can run the server inside a namespace as a subprocess.
const helperEnv = "KICKSTAND_TFTP_HELPER_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperServe(os.Getenv("KICKSTAND_TFTP_HELPER_ROOT"), os.Getenv(helperEnv)))
	}
	os.Exit(m.Run())
}

// helperServe serves root on each comma-free listen address until SIGTERM,
// printing "ready" once listening.
func helperServe(root, listen string) int {
	dir, err := NewDirOpener(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer dir.Close()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(Config{Opener: dir, Logger: log})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready", pc.LocalAddr())
	if err := srv.Serve(ctx, pc); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// requirePeers skips (or, under KICKSTAND_REQUIRE_PEERS=1, fails) when a
// real client tool is missing.
func requirePeers(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing(t, fmt.Sprintf("%s not installed (scripts/deps.sh installs it)", tool))
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		missing(t, "needs root for network namespaces")
	}
}

func missing(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// testServer runs a Server on loopback and collects its TransferInfo reports.
type testServer struct {
	addr  netip.AddrPort
	dir   string
	infos chan TransferInfo
	done  chan error
	stop  context.CancelFunc
}

// startServer serves a fresh temp dir on network ("udp4" -> 127.0.0.1,
// "udp6" -> ::1). tweak may adjust the config before New.
func startServer(t *testing.T, network string, tweak func(*Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	opener, err := NewDirOpener(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { opener.Close() })
	return startServerWith(t, network, dir, opener, tweak)
}

func startServerWith(t *testing.T, network, dir string, opener Opener, tweak func(*Config)) *testServer {
	t.Helper()
	ts := &testServer{dir: dir, infos: make(chan TransferInfo, 1024), done: make(chan error, 1)}
	cfg := Config{
		Opener:     opener,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OnTransfer: func(i TransferInfo) { ts.infos <- i },
	}
	if tweak != nil {
		tweak(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := "127.0.0.1:0"
	if network == "udp6" {
		host = "[::1]:0"
	}
	pc, err := net.ListenPacket(network, host)
	if err != nil {
		t.Fatal(err)
	}
	ts.addr = pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithCancel(context.Background())
	ts.stop = cancel
	go func() { ts.done <- srv.Serve(ctx, pc) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-ts.done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
		pc.Close()
	})
	return ts
}

// info waits for the next transfer report.
func (ts *testServer) info(t *testing.T) TransferInfo {
	t.Helper()
	select {
	case i := <-ts.infos:
		return i
	case <-time.After(30 * time.Second):
		t.Fatal("no transfer report")
	}
	return TransferInfo{}
}

func (ts *testServer) write(t *testing.T, name string, data []byte) {
	t.Helper()
	p := filepath.Join(ts.dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Logf("%s", p)
	return len(p), nil
}

// randomBytes is deterministic pseudo-random content, so failures reproduce.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func shaFile(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(ents)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
