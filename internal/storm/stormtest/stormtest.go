// Package stormtest runs boot storms in network namespaces for the tests
// that need real kickstand servers: a client namespace where `kickstand
// bench storm` runs, and per server a namespace joined to it by its own
// veth (198.18.0.4k+1/30 on the server, 198.18.0.4k+2 on the client, which
// relays its DHCP). Everything is removed when the test ends.
package stormtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/storm"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// Rig is a storm's network, its kickstand binary and its servers.
type Rig struct {
	t       *testing.T
	Bin     string // the kickstand binary (built once per rig)
	cli     string
	srvs    []string
	Targets []storm.Target
	// Servers are the running `kickstand serve` processes, by target.
	Servers []*exec.Cmd
	logs    []string
}

// New makes the namespaces for servers kickstand servers; name (with
// KICKSTAND_NS_PREFIX in front) must be unique among concurrent tests.
func New(t *testing.T, name string, servers int) *Rig {
	t.Helper()
	vmtest.RequireRoot(t)
	vmtest.Need(t, "ip")
	name = vmtest.NSPrefix() + name
	r := &Rig{t: t, cli: name + "-cli"}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	del := func(ns string) {
		for _, sig := range []string{"TERM", "KILL"} {
			out, _ := exec.Command("ip", "netns", "pids", ns).Output()
			pids := strings.Fields(string(out))
			if len(pids) == 0 {
				break
			}
			exec.Command("kill", append([]string{"-" + sig}, pids...)...).Run()
			time.Sleep(300 * time.Millisecond)
		}
		exec.Command("ip", "netns", "del", ns).Run()
	}
	del(r.cli)
	ip("netns", "add", r.cli)
	t.Cleanup(func() { del(r.cli) })
	ip("-n", r.cli, "link", "set", "lo", "up")
	for k := 0; k < servers; k++ {
		ns := fmt.Sprintf("%s-s%d", name, k)
		del(ns)
		ip("netns", "add", ns)
		t.Cleanup(func() { del(ns) })
		r.srvs = append(r.srvs, ns)
		srvIf, cliIf := fmt.Sprintf("kss%d", k), fmt.Sprintf("ksc%d", k)
		srv, loc := netip.AddrFrom4([4]byte{198, 18, 0, byte(4*k + 1)}), netip.AddrFrom4([4]byte{198, 18, 0, byte(4*k + 2)})
		ip("-n", ns, "link", "set", "lo", "up")
		ip("-n", ns, "link", "add", srvIf, "type", "veth", "peer", "name", cliIf, "netns", r.cli)
		ip("-n", ns, "addr", "add", srv.String()+"/30", "dev", srvIf)
		ip("-n", r.cli, "addr", "add", loc.String()+"/30", "dev", cliIf)
		ip("-n", ns, "link", "set", srvIf, "up")
		ip("-n", r.cli, "link", "set", cliIf, "up")
		ip(append([]string{"-n", ns}, storm.RouteBack(loc)...)...)
		r.Targets = append(r.Targets, storm.Target{Server: srv, Local: loc, HTTPPort: 8080})
	}
	r.Bin = enginetest.BuildKickstand(t)
	return r
}

// Serve starts one kickstand per target, each with the storm inventory of
// n hosts (dsn: "" for SQLite in each server's data dir, else the
// PostgreSQL store they share) and a distro tree of the given image sizes.
func (r *Rig) Serve(n int, dsn string, kernel, initrd int64) {
	t := r.t
	t.Helper()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := storm.MakeTree(tree, kernel, initrd); err != nil {
		t.Fatal(err)
	}
	for k, ns := range r.srvs {
		sdir := filepath.Join(dir, fmt.Sprintf("srv%d", k))
		os.MkdirAll(filepath.Join(sdir, "templates"), 0o755)
		var b bytes.Buffer
		if err := storm.WriteInventory(&b, n, storm.ServerConfig{Address: r.Targets[k].Server, Interface: fmt.Sprintf("kss%d", k),
			DataDir: filepath.Join(sdir, "data"), Store: dsn, Templates: filepath.Join(sdir, "templates"), Tree: tree}); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(sdir, "kickstand.yaml")
		if err := os.WriteFile(cfg, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		log := filepath.Join(sdir, "log")
		logf, err := os.Create(log)
		if err != nil {
			t.Fatal(err)
		}
		// ip netns exec execs kickstand in place: the PID is the server's.
		cmd := exec.Command("ip", "netns", "exec", ns, r.Bin, "serve", "-c", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		logf.Close()
		r.Servers, r.logs = append(r.Servers, cmd), append(r.logs, log)
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
			if t.Failed() {
				t.Logf("server %d log (tail):\n%s", k, r.LogTail(k, 30))
			}
		})
	}
}

// PIDs are the servers' process ids, for bench storm --kill.
func (r *Rig) PIDs() string {
	var p []string
	for _, s := range r.Servers {
		p = append(p, strconv.Itoa(s.Process.Pid))
	}
	return strings.Join(p, ",")
}

// LogTail is the last n lines of server k's log.
func (r *Rig) LogTail(k, n int) string {
	b, _ := os.ReadFile(r.logs[k])
	return enginetest.LastLines(string(b), n)
}

// Storm runs `kickstand bench storm` for n machines in the client
// namespace against every target, with the link measured first against a
// sink beside the first server, and extra flags; bounded by limit. It
// returns the report, failing the test only when there is none.
func (r *Rig) Storm(n int, limit time.Duration, extra ...string) *storm.Report {
	t := r.t
	t.Helper()
	// The far end of the link measurement, in the first server's namespace.
	var ln net.Listener
	if err := vmtest.InNetns(r.srvs[0], func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(r.Targets[0].Server, 5001).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sinkDone := make(chan struct{})
	go func() { storm.Sink(ctx, ln, 30*time.Second); close(sinkDone) }()
	defer func() { cancel(); <-sinkDone }()

	args := []string{"netns", "exec", r.cli, r.Bin, "-o", "json", "bench", "storm", "--n", strconv.Itoa(n),
		"--sink", ln.Addr().String(), "--link-for", "1s", "--timeout", limit.String()}
	for _, tg := range r.Targets {
		args = append(args, "--target", tg.Server.String()+"@"+tg.Local.String())
	}
	var out, errb bytes.Buffer
	cmd := exec.Command("ip", append(args, extra...)...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(limit + 2*time.Minute):
		cmd.Process.Kill()
		err = <-done
	}
	var rep storm.Report
	if jerr := json.Unmarshal(out.Bytes(), &rep); jerr != nil {
		t.Fatalf("bench storm: %v; report: %v\n%s\n%s", err, jerr, out.String(), errb.String())
	}
	var txt strings.Builder
	rep.WriteText(&txt)
	t.Logf("\n%s", txt.String())
	return &rep
}

// Check fails the test unless all n machines booted, every step counted
// every machine, and each got kernel and initrd's bytes at least once.
func Check(t *testing.T, rep *storm.Report, n int, kernel, initrd int64) {
	t.Helper()
	if rep.Succeeded != n || len(rep.Failures) != 0 {
		t.Errorf("%d of %d machines booted; failures by step %v: %v", rep.Succeeded, n, rep.Failures, rep.Errors)
	}
	for _, s := range rep.Steps {
		if s.Count < n-rep.FoundBuilt {
			t.Errorf("step %s completed by %d machines, want %d", s.Step, s.Count, n-rep.FoundBuilt)
		}
	}
	if want := int64(n-rep.FoundBuilt) * (kernel + initrd); rep.Bytes < want {
		t.Errorf("%d bytes received, want at least %d (kernel and initrd for every machine)", rep.Bytes, want)
	}
}
