package hardening

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// stress reports whether the long variants run (scripts/stress.sh).
func stress() bool { return os.Getenv("KICKSTAND_STRESS") == "1" }

// build compiles kickstand once per test binary, into a directory anyone
// may read, so that tests can also run it as an unprivileged user.
var build = sync.OnceValues(func() (string, error) {
	root, err := vmtest.RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "kickstand-hardening-bin")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kickstand")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kickstand")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/kickstand: %v\n%s", err, out)
	}
	return bin, nil
})

func kickstandBin(t *testing.T) string {
	t.Helper()
	vmtest.Need(t, "go")
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// proc is a running `kickstand serve` with its log (stderr) captured.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
	err  error
}

func (p *proc) Log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func (p *proc) Pid() int { return p.cmd.Process.Pid }

// start runs cmd (whose stderr and stdout it takes over) and waits until
// its log says ready.
func start(t *testing.T, cmd *exec.Cmd, ready string) *proc {
	t.Helper()
	p := &proc{cmd: cmd, done: make(chan struct{})}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.log.Write(sc.Bytes())
			p.log.WriteByte('\n')
			p.mu.Unlock()
		}
		r.Close()
	}()
	go func() { p.err = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("kickstand log (pid %d):\n%s", cmd.Process.Pid, tail(p.Log(), 80))
		}
	})
	if ready != "" {
		p.waitLog(t, ready, 30*time.Second)
	}
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits (SIGKILL after d).
func (p *proc) stop(d time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(d):
		p.kill()
		return fmt.Errorf("did not stop within %s of SIGTERM", d)
	}
	return p.err
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (p *proc) waitLog(t *testing.T, substr string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !strings.Contains(p.Log(), substr) {
		if p.exited() {
			t.Fatalf("kickstand exited (%v) before logging %q:\n%s", p.err, substr, tail(p.Log(), 40))
		}
		if time.Now().After(deadline) {
			t.Fatalf("kickstand did not log %q within %s:\n%s", substr, d, tail(p.Log(), 40))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePort finds a port free for both TCP and UDP on addr (syslog and the
// HTTP side want both).
func freePort(t *testing.T, addr string) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		ln, err := net.Listen("tcp", addr+":0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", net.JoinHostPort(addr, strconv.Itoa(port)))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// procStatus reads one "Key: value kB" field of /proc/PID/status, in kB.
func procStatus(pid int, key string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, key+":"); ok {
			f := strings.Fields(v)
			if len(f) == 0 {
				break
			}
			return strconv.Atoi(f[0])
		}
	}
	return 0, fmt.Errorf("/proc/%d/status has no %s", pid, key)
}

// fdCount counts the open file descriptors of pid.
func fdCount(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents), err
}

// fixture is an inventory directory: a distro tree with a kernel and
// initrd, a templates directory, and the config file written from cfg.
type fixture struct {
	dir, cfg, data string
}

func newFixture(t *testing.T, cfg string, templates map[string]string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{dir: dir, cfg: filepath.Join(dir, "kickstand.yaml"), data: filepath.Join(dir, "data")}
	for p, b := range map[string]string{
		"tree/vmlinuz":    "not really a kernel\n",
		"tree/initrd.img": "not really an initrd\n",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(b), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	for name, body := range templates {
		if err := os.WriteFile(filepath.Join(dir, "templates", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f.write(t, cfg)
	return f
}

func (f *fixture) write(t *testing.T, cfg string) {
	t.Helper()
	// Write and rename, as editors do, so a reader never sees half a file.
	tmp := f.cfg + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, f.cfg); err != nil {
		t.Fatal(err)
	}
}

// cli runs a kickstand command against the fixture's config and data.
func (f *fixture) cli(t *testing.T, bin string, args ...string) (string, error) {
	t.Helper()
	args = append([]string{"--config", f.cfg, "--data", f.data}, args...)
	out, err := exec.Command(bin, args...).CombinedOutput()
	return string(out), err
}

// newLab makes a namespace lab for the test (root needed).
func newLab(t *testing.T, ctx context.Context, name string, opts ...vmtest.LabOption) *vmtest.Lab {
	t.Helper()
	vmtest.RequireRoot(t)
	vmtest.Need(t, "ip")
	lab, err := vmtest.NewLab(ctx, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	return lab
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// budget is a test's time limit: d, or 20 minutes for the stress variants.
func budget(d time.Duration) time.Duration {
	if stress() {
		return 20 * time.Minute
	}
	return d
}
