package storm

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
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store/pgtest"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// envChild carries a Config to a copy of the test binary that runs the
// simulator inside the client namespace (every socket it opens, from any
// goroutine, must be there, which only a whole process guarantees).
const envChild = "KICKSTAND_STORM_CHILD"

func TestMain(m *testing.M) {
	if c := os.Getenv(envChild); c != "" {
		os.Exit(child(c))
	}
	os.Exit(m.Run())
}

type childConfig struct {
	Config
	Sink string `json:"sink"` // host:port of a Sink to measure the link against
}

func child(js string) int {
	var cc childConfig
	if err := json.Unmarshal([]byte(js), &cc); err != nil {
		fmt.Fprintln(os.Stderr, "storm child:", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := WaitReady(ctx, cc.Targets); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if cc.Sink != "" {
		c, err := MeasureLink(ctx, cc.Targets[0].Local, cc.Sink, 4, time.Second)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		cc.LinkCapacity = c
	}
	rep, err := Run(ctx, cc.Config)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(rep)
	return 0
}

func TestParseIPXE(t *testing.T) {
	script := `#!ipxe
# kickstand: storm-00001
echo kickstand: installing storm-00001 (rhel9)
kernel http://198.18.0.1:8080/distros/storm/vmlinuz initrd=i0 console=ttyS0 inst.ks=http://198.18.0.1:8080/ks/abc123 inst.repo=http://198.18.0.1:8080/distros/storm/
initrd --name i0 http://198.18.0.1:8080/distros/storm/initrd.img
boot || goto failed
`
	s, err := parseIPXE(script)
	if err != nil {
		t.Fatal(err)
	}
	if s.kernel != "http://198.18.0.1:8080/distros/storm/vmlinuz" || len(s.initrds) != 1 ||
		s.initrds[0] != "http://198.18.0.1:8080/distros/storm/initrd.img" || s.kickstart != "http://198.18.0.1:8080/ks/abc123" {
		t.Errorf("parsed %+v", s)
	}
	cb, err := callbackURL(s.kickstart)
	if err != nil || cb != "http://198.18.0.1:8080/cb/abc123/built" {
		t.Errorf("callback %q, %v", cb, err)
	}
	for _, bad := range []string{"", "kernel http://x/k", "#!ipxe\necho nothing\n", "#!ipxe\nkernel tftp://x/k\n"} {
		if _, err := parseIPXE(bad); err == nil {
			t.Errorf("parsed %q without error", bad)
		}
	}
	if _, err := callbackURL("http://x/distros/k"); err == nil {
		t.Error("callback URL from a URL without /ks/")
	}
}

func TestStats(t *testing.T) {
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := stats("x", d)
	if s.Count != 100 || s.P50 != 50*time.Millisecond || s.P95 != 95*time.Millisecond || s.P99 != 99*time.Millisecond || s.Max != 100*time.Millisecond {
		t.Errorf("%+v", s)
	}
	if s := stats("y", nil); s.Count != 0 || s.Max != 0 {
		t.Errorf("empty: %+v", s)
	}
}

func TestParseTFTP(t *testing.T) {
	p, err := parseTFTP([]byte("\x00\x06blksize\x001468\x00tsize\x0070000\x00"))
	if err != nil || p.op != opOACK || p.options["blksize"] != "1468" || p.options["tsize"] != "70000" {
		t.Errorf("OACK: %+v %v", p, err)
	}
	p, err = parseTFTP([]byte{0, 3, 0, 7, 'a', 'b'})
	if err != nil || p.op != opDATA || p.block != 7 || string(p.data) != "ab" {
		t.Errorf("DATA: %+v %v", p, err)
	}
	p, err = parseTFTP([]byte("\x00\x05\x00\x00server busy\x00"))
	if err != nil || p.op != opERROR || p.msg != "server busy" {
		t.Errorf("ERROR: %+v %v", p, err)
	}
	for _, bad := range [][]byte{nil, {0}, {0, 3, 0}, {0, 9}, []byte("\x00\x06blksize\x00")} {
		if _, err := parseTFTP(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

func FuzzParseIPXE(f *testing.F) {
	f.Add("#!ipxe\nkernel http://a/k inst.ks=http://a/ks/t\ninitrd --name i0 http://a/i\n")
	f.Add("#!ipxe\nkernel --name x\ninitrd\n")
	f.Add("#!ipxe\nchain http://a/b ks=http://a/ks/\n")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseIPXE(s)
		if err == nil && b.kernel == "" {
			t.Error("no error and no kernel")
		}
		if b.kickstart != "" {
			callbackURL(b.kickstart)
		}
	})
}

func FuzzParseTFTP(f *testing.F) {
	f.Add([]byte("\x00\x06blksize\x001468\x00"))
	f.Add([]byte{0, 3, 0, 1, 1, 2, 3})
	f.Add([]byte("\x00\x05\x00\x01File not found\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseTFTP(b)
		if err == nil && p.op == opDATA && len(p.data) != len(b)-4 {
			t.Errorf("DATA of %d bytes from a %d-byte packet", len(p.data), len(b))
		}
	})
}

func TestWriteInventory(t *testing.T) {
	var b bytes.Buffer
	if err := WriteInventory(&b, 300, ServerConfig{Address: netip.MustParseAddr("198.18.0.1"), Interface: "ks0",
		DataDir: "/tmp/d", Templates: "/tmp/t", Tree: "/tmp/tree"}); err != nil {
		t.Fatal(err)
	}
	cfg, err := inventory.Parse("storm.yaml", b.Bytes())
	if err != nil {
		t.Fatalf("%v\n%s", err, b.String()[:500])
	}
	if len(cfg.Hosts) != 300 {
		t.Fatalf("%d hosts", len(cfg.Hosts))
	}
	seen := map[string]bool{}
	for i, h := range cfg.Hosts {
		p, ok := h.Addr4()
		if !ok || p.Addr() != HostAddr(i) || h.MACs[0] != MAC(i).String() || h.Netboot != inventory.StateInstall {
			t.Errorf("host %d: %+v", i, h)
		}
		if seen[p.Addr().String()] {
			t.Errorf("address %v twice", p.Addr())
		}
		seen[p.Addr().String()] = true
	}
}

// rig is a storm's network: one client namespace and, per server, a
// server namespace joined to it by its own veth (198.18.0.4k+1/30 on the
// server, 198.18.0.4k+2 on the client, which relays its DHCP).
type rig struct {
	t       *testing.T
	cli     string
	srvs    []string
	targets []Target
}

func newRig(t *testing.T, name string, servers int) *rig {
	t.Helper()
	vmtest.RequireRoot(t)
	vmtest.Need(t, "ip")
	name = vmtest.NSPrefix() + name
	r := &rig{t: t, cli: name + "-cli"}
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
		ip(append([]string{"-n", ns}, RouteBack(loc)...)...)
		r.targets = append(r.targets, Target{Server: srv, Local: loc, HTTPPort: 8080})
	}
	return r
}

func buildKickstand(t *testing.T) string {
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

// storm runs n machines against one kickstand per target (store: "" for
// SQLite, else a PostgreSQL DSN they share) and returns the report.
func (r *rig) storm(n int, dsn string, kernel, initrd int64) *Report {
	t := r.t
	t.Helper()
	bin := buildKickstand(t)
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	if err := MakeTree(tree, kernel, initrd); err != nil {
		t.Fatal(err)
	}
	for k, ns := range r.srvs {
		sdir := filepath.Join(dir, fmt.Sprintf("srv%d", k))
		os.MkdirAll(filepath.Join(sdir, "templates"), 0o755)
		var b bytes.Buffer
		if err := WriteInventory(&b, n, ServerConfig{Address: r.targets[k].Server, Interface: fmt.Sprintf("kss%d", k),
			DataDir: filepath.Join(sdir, "data"), Store: dsn, Templates: filepath.Join(sdir, "templates"), Tree: tree}); err != nil {
			t.Fatal(err)
		}
		cfg := filepath.Join(sdir, "kickstand.yaml")
		if err := os.WriteFile(cfg, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		logf, err := os.Create(filepath.Join(sdir, "log"))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ip", "netns", "exec", ns, bin, "serve", "-c", cfg)
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		logf.Close()
		t.Cleanup(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				b, _ := os.ReadFile(logf.Name())
				t.Logf("server %d log (tail):\n%s", k, tail(string(b), 30))
			}
		})
	}
	// The far end of the link measurement, in the first server's namespace.
	var ln net.Listener
	if err := vmtest.InNetns(r.srvs[0], func() (err error) {
		ln, err = net.Listen("tcp4", netip.AddrPortFrom(r.targets[0].Server, 5001).String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sinkDone := make(chan struct{})
	go func() { Sink(ctx, ln, 30*time.Second); close(sinkDone) }()
	defer func() { cancel(); <-sinkDone }()

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(childConfig{Config: Config{Machines: n, Targets: r.targets, Timeout: 4 * time.Minute},
		Sink: ln.Addr().String()})
	var out, errb bytes.Buffer
	cmd := exec.Command("ip", "netns", "exec", r.cli, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+string(js))
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(6 * time.Minute):
		cmd.Process.Kill()
		err = <-done
	}
	if err != nil {
		t.Fatalf("simulator: %v\n%s", err, errb.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("simulator report: %v\n%s\n%s", err, out.String(), errb.String())
	}
	var txt strings.Builder
	rep.WriteText(&txt)
	t.Logf("\n%s", txt.String())
	return &rep
}

func tail(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func check(t *testing.T, rep *Report, n int) {
	t.Helper()
	if rep.Succeeded != n || len(rep.Failures) != 0 {
		t.Errorf("%d of %d machines booted; failures by step %v: %v", rep.Succeeded, n, rep.Failures, rep.Errors)
	}
	for _, s := range rep.Steps {
		if s.Count != n {
			t.Errorf("step %s completed by %d machines, want %d", s.Step, s.Count, n)
		}
	}
	if want := int64(n) * (storeKernel + storeInitrd); rep.Bytes < want {
		t.Errorf("%d bytes received, want at least %d (kernel and initrd for every machine)", rep.Bytes, want)
	}
}

// The make-test storm is small: 100 machines and 1 MB + 4 MB images keep
// it to seconds; bench/storm/run.sh runs the real 1,000 x (10 + 50 MB).
const (
	storeMachines = 100
	storeKernel   = 1 << 20
	storeInitrd   = 4 << 20
)

func TestStormSQLite(t *testing.T) {
	r := newRig(t, "kss-lite", 1)
	check(t, r.storm(storeMachines, "", storeKernel, storeInitrd), storeMachines)
}

// TestStormTwoServersPostgres splits the machines between two kickstand
// servers on one PostgreSQL: every machine must boot, from either.
func TestStormTwoServersPostgres(t *testing.T) {
	r := newRig(t, "kss-pg", 2)
	dsn := pgtest.DSN(t)
	rep := r.storm(storeMachines, dsn, storeKernel, storeInitrd)
	check(t, rep, storeMachines)
	for k, n := range rep.PerTarget {
		if n != storeMachines/2 {
			t.Errorf("server %d booted %d machines, want %d", k, n, storeMachines/2)
		}
	}
}
