package vminstall

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/diagnose"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

// OVMF images from Debian's ovmf package; the VARS image is copied per VM.
const (
	ovmfCode = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	ovmfVars = "/usr/share/OVMF/OVMF_VARS_4M.fd"
)

// TestBootOptions control a test boot.
type TestBootOptions struct {
	Firmware  string        // "bios" (default) or "uefi"
	Family    int           // 4 (default) or 6
	Timeout   time.Duration // the whole boot; default 5 minutes
	MemoryMiB int           // default 2048, what a real installer needs
	// Sandbox is the command that runs ServeSandbox (kickstand's hidden
	// `test-boot sandbox-serve`); "--config FILE --data DIR" is appended.
	Sandbox []string
	// Progress receives each timeline event as it is recorded.
	Progress io.Writer
	// Keep leaves the work directory (sandbox config and store, serial
	// log, sandbox log) in place and names it in the result.
	Keep bool
	// FailGrace is how long nothing may follow a failed request before
	// the verdict is FAIL; default 10 s.
	FailGrace time.Duration
}

// TestBootResult is the outcome of a test boot.
type TestBootResult struct {
	Host      string
	Pass      bool
	Verdict   string   // one line: "PASS: ..." or "FAIL: ..."
	Details   []string // failed requests, the diagnosis and its hint
	Notes     []string // things worth knowing that are not the verdict
	Diagnosis diagnose.Diagnosis
	Events    []store.Event // the sandbox's timeline
	Serial    []string      // the last lines of the VM's console
	Elapsed   time.Duration
	WorkDir   string // set when kept
}

// TestBoot proves a host's network boot chain in a throwaway VM: a private
// namespace and bridge, a sandboxed kickstand serving only that bridge from
// a fresh store holding a snapshot of the host (its state in the real store
// never changes: the sandbox's built callback flips only the snapshot), and
// a QEMU VM with the host's MAC, UUID and firmware. It follows the sandbox's
// timeline until the kickstart and what comes after it (stage2, repository
// metadata, or the built callback of the project's test installer) were
// fetched, or until the chain breaks, and judges.
func TestBoot(ctx context.Context, in *server.Instance, host string, o TestBootOptions) (*TestBootResult, error) {
	if o.Firmware == "" {
		o.Firmware = "bios"
	}
	if o.Family == 0 {
		o.Family = 4
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 2048
	}
	if o.FailGrace <= 0 {
		o.FailGrace = 10 * time.Second
	}
	switch {
	case o.Firmware != "bios" && o.Firmware != "uefi":
		return nil, fmt.Errorf("test-boot: firmware %q: want bios or uefi", o.Firmware)
	case o.Family != 4 && o.Family != 6:
		return nil, fmt.Errorf("test-boot: family %d: want 4 or 6", o.Family)
	case o.Family == 6 && o.Firmware == "bios":
		return nil, errors.New("test-boot: --family 6 needs --firmware uefi: the BIOS iPXE ROM boots over IPv6 only with router advertisements, which the sandbox does not send")
	case len(o.Sandbox) == 0:
		return nil, errors.New("test-boot: no sandbox server command")
	}
	t, err := in.Booter.TargetByName(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("test-boot %s: %w", host, err)
	}
	if os.Geteuid() != 0 {
		return nil, errors.New("test-boot: needs root, for the network namespace, bridge and tap")
	}
	tools := []string{"ip", "qemu-system-x86_64", "timeout"}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("test-boot: %s not found (Debian: iproute2, qemu-system-x86, coreutils)", tool)
		}
	}
	if o.Firmware == "uefi" {
		for _, f := range []string{ovmfCode, ovmfVars} {
			if _, err := os.Stat(f); err != nil {
				return nil, fmt.Errorf("test-boot: UEFI firmware: %w (Debian package ovmf)", err)
			}
		}
	}
	res := &TestBootResult{Host: host}
	cfg := in.Config()
	if err := cfg.CheckFiles(); err != nil {
		res.Notes = append(res.Notes, "`kickstand serve` would refuse this config ("+strings.ReplaceAll(err.Error(), "\n", "; ")+
			"); the sandbox serves it anyway so the timeline shows what the host would get")
	}
	mac := ""
	if len(t.Record.MACs) > 0 {
		mac = t.Record.MACs[0]
	} else {
		return nil, fmt.Errorf("test-boot %s: the host has no MAC in the inventory, so no machine could PXE-boot as it", host)
	}

	dir, err := os.MkdirTemp("", "kickstand-test-boot-")
	if err != nil {
		return nil, fmt.Errorf("test-boot: %w", err)
	}
	if o.Keep {
		res.WorkDir = dir
	} else {
		defer os.RemoveAll(dir)
	}
	data := filepath.Join(dir, "data")
	netPlan := PlanSandboxNet(&t.Record.Host)
	sc := SandboxConfig(cfg, t, netPlan, data, o.Family)
	cfgPath := filepath.Join(dir, "kickstand.yaml")
	b, err := yaml.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("test-boot: sandbox config: %w", err)
	}
	if _, err := inventory.Parse(cfgPath, b); err != nil {
		return nil, fmt.Errorf("test-boot: sandbox config: %w", err)
	}
	if err := os.WriteFile(cfgPath, b, 0o644); err != nil {
		return nil, fmt.Errorf("test-boot: %w", err)
	}

	// The run gets its own deadline; cleanup below does not use it.
	rctx, cancel := context.WithTimeout(ctx, o.Timeout+30*time.Second)
	defer cancel()
	ns, err := newNetns(rctx, netPlan)
	if err != nil {
		return nil, err
	}
	defer ns.remove()

	srv, err := ns.start(rctx, filepath.Join(dir, "sandbox.log"), nil,
		append(append([]string(nil), o.Sandbox...), "--config", cfgPath, "--data", data)...)
	if err != nil {
		return nil, fmt.Errorf("test-boot: sandbox server: %w", err)
	}
	defer srv.stop()
	if err := srv.waitFor(rctx, SandboxReady, 30*time.Second); err != nil {
		return nil, fmt.Errorf("test-boot: sandbox server: %w", err)
	}
	st, err := sqlstore.OpenSQLite(rctx, data)
	if err != nil {
		return nil, fmt.Errorf("test-boot: sandbox store: %w", err)
	}
	defer st.Close()

	serial := &tailBuffer{max: 200}
	qargs, err := testBootQEMU(o, mac, t.Record.UUID, dir)
	if err != nil {
		return nil, err
	}
	secs := strconv.Itoa(int(o.Timeout/time.Second) + 1)
	vm, err := ns.start(rctx, filepath.Join(dir, "serial.log"), serial,
		append([]string{"timeout", "-k", "5", secs, "qemu-system-x86_64"}, qargs...)...)
	if err != nil {
		return nil, fmt.Errorf("test-boot: qemu: %w", err)
	}
	defer vm.stop()

	start := time.Now()
	deadline := start.Add(o.Timeout)
	expect := expectedPaths(cfg, t)
	seen := 0
	var j judgement
	for {
		evs, err := st.Events(rctx, "", 0, 0)
		if err != nil {
			return nil, fmt.Errorf("test-boot: sandbox timeline: %w", err)
		}
		for ; seen < len(evs); seen++ {
			if o.Progress != nil {
				e := evs[seen]
				fmt.Fprintf(o.Progress, "%6.1fs  %-16s %s\n", e.At.Sub(start).Seconds(), e.Kind, e.Detail)
			}
		}
		now := time.Now()
		vmDone := vm.exited()
		j = judge(evs, now, vmDone || now.After(deadline) || rctx.Err() != nil, o.FailGrace)
		if j.done {
			break
		}
		select {
		case <-rctx.Done():
		case <-vm.done:
		case <-time.After(500 * time.Millisecond):
		}
	}
	res.Elapsed = time.Since(start)
	vm.stop()
	srv.stop() // flushes the sandbox's timeline
	if evs, err := st.Events(context.WithoutCancel(ctx), "", 0, 0); err == nil {
		res.Events = evs
	}
	res.Serial = serial.lines(25)
	res.Pass = j.pass
	how := fmt.Sprintf("%s (%s firmware, IPv%d)", host, o.Firmware, o.Family)
	d := diagnose.Diagnose(res.Events, time.Now(), diagnose.Options{Family: o.Family, HasGateway6: t.Record.Gateway6 != ""})
	if j.pass {
		res.Diagnosis = d
		res.Verdict = fmt.Sprintf("PASS: %s: %s after %s", how, j.reason, res.Elapsed.Round(100*time.Millisecond))
		return res, nil
	}
	// Nothing more will happen: any quiet is a stall, so the diagnosis
	// names the step that did not follow.
	d = diagnose.Diagnose(res.Events, time.Now(), diagnose.Options{Family: o.Family, HasGateway6: t.Record.Gateway6 != "", StallAfter: time.Nanosecond, InstallStallAfter: time.Nanosecond})
	res.Diagnosis = d
	failed := failedRequests(res.Events)
	for _, f := range failed {
		res.Details = append(res.Details, "request failed: "+f.describe(expect))
	}
	cause := d.Cause
	switch {
	case len(res.Events) == 0:
		cause = fmt.Sprintf("no DHCP request from %s reached the sandbox", mac)
		res.Details = append(res.Details, "the VM's firmware never asked for an address; the serial console shows why")
	case j.failed != nil && len(failed) > 0 && failed[len(failed)-1].what == j.failed.Detail:
		// The request the chain broke on says more than the stage it
		// broke at (a missing kernel is served as a plain 404 "file").
		cause = failed[len(failed)-1].describe(expect)
	case cause == "":
		cause = j.reason
	}
	res.Verdict = fmt.Sprintf("FAIL: %s stopped at stage %s after %s: %s", how, d.Stage, res.Elapsed.Round(100*time.Millisecond), cause)
	if d.Cause != "" && d.Cause != cause {
		res.Details = append(res.Details, "diagnosis: "+d.Cause)
	}
	if d.Hint != "" {
		res.Details = append(res.Details, "hint: "+d.Hint)
	}
	return res, nil
}

// judgement is what the timeline says so far.
type judgement struct {
	done, pass bool
	reason     string
	failed     *store.Event // the failed request the chain stopped on
}

// judge decides whether a test boot is over. It passes once the kickstart
// was fetched and the installer went on past it (stage2 or repository
// metadata for a real installer, the built callback for the test
// installer); it fails on a failed callback, on a failed request that
// nothing followed for grace, and when final (the VM ended or time ran
// out) without a pass.
func judge(evs []store.Event, now time.Time, final bool, grace time.Duration) judgement {
	var ks, beyond string
	var lastFail *store.Event
	for i := range evs {
		e := &evs[i]
		switch {
		case e.Kind == "callback.failed":
			return judgement{done: true, reason: "the installer reported failure (" + e.Detail + ")"}
		case e.Kind == "callback.built":
			beyond = "the install reported built"
		case strings.HasPrefix(e.Kind, "http.") || strings.HasPrefix(e.Kind, "tftp."):
			if !fetched(e) {
				lastFail = e
				continue
			}
			lastFail = nil
			switch e.Kind {
			case "http.kickstart":
				ks = "kickstart fetched"
			case "http.stage2":
				if beyond == "" {
					beyond = "stage2 fetched"
				}
			case "http.repodata":
				if beyond == "" {
					beyond = "repository metadata fetched"
				}
			}
		}
	}
	if ks != "" && beyond != "" {
		return judgement{done: true, pass: true, reason: ks + ", " + beyond}
	}
	if lastFail != nil && now.Sub(lastFail.At) >= grace {
		return judgement{done: true, failed: lastFail, reason: fmt.Sprintf("%s failed and nothing followed for %s", lastFail.Detail, grace)}
	}
	if final {
		return judgement{done: true, reason: "the VM stopped or time ran out before the kickstart and what follows it were fetched"}
	}
	return judgement{}
}

// fetched mirrors the diagnosis: an HTTP error or an unfinished TFTP
// transfer (UEFI's size probe included) delivered nothing.
func fetched(e *store.Event) bool {
	if strings.HasPrefix(e.Kind, "tftp.") {
		done, ok := e.Data["completed"].(bool)
		return !ok || done
	}
	st := num(e.Data["status"])
	return st == 0 || (st >= 200 && st < 400)
}

func num(v any) int {
	switch n := v.(type) {
	case int:
		return n
	case int64:
		return int(n)
	case float64:
		return int(n)
	}
	return 0
}

type failedReq struct{ path, what, status string }

func (f failedReq) describe(expect map[string]string) string {
	s := f.what + " -> " + f.status
	if why := expect[f.path]; why != "" {
		s += " (" + why + ")"
	}
	return s
}

// failedRequests lists each failed HTTP request once, in order. TFTP size
// probes and aborted reads are left out: UEFI firmware makes them on
// purpose.
func failedRequests(evs []store.Event) []failedReq {
	var out []failedReq
	seen := map[string]bool{}
	for i := range evs {
		e := &evs[i]
		if !strings.HasPrefix(e.Kind, "http.") || fetched(e) {
			continue
		}
		p, _ := e.Data["path"].(string)
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, failedReq{path: p, what: e.Detail, status: "HTTP " + strconv.Itoa(num(e.Data["status"]))})
	}
	return out
}

// expectedPaths names what the host's own boot files are, so a failed
// request can say "the distro kernel, /srv/tree/vmlinuz is missing".
func expectedPaths(cfg *inventory.Config, t *boot.Target) map[string]string {
	m := map[string]string{}
	d := t.Distro
	tree := cfg.Abs(d.Tree)
	describe := func(what, f string) string {
		p := filepath.Join(tree, f)
		if _, err := os.Stat(p); err != nil {
			return fmt.Sprintf("%s of distro %s: %s does not exist", what, d.Name, p)
		}
		return fmt.Sprintf("%s of distro %s, %s", what, d.Name, p)
	}
	m["/distros/"+d.Name+"/"+d.Kernel] = describe("the kernel", d.Kernel)
	for _, i := range d.Initrds {
		m["/distros/"+d.Name+"/"+i] = describe("an initrd", i)
	}
	m["/ks/<token>"] = "the host's kickstart"
	return m
}

// testBootQEMU is the VM of REAL-CLIENTS.md's tested recipes: SeaBIOS with
// QEMU's iPXE ROM on an e1000, or OVMF's own network stack on virtio-net
// (empty romfile), PXE over the family asked for; always TCG.
func testBootQEMU(o TestBootOptions, mac, uuid, dir string) ([]string, error) {
	args := []string{"-name", "kickstand-test-boot", "-m", strconv.Itoa(o.MemoryMiB), "-smp", "1",
		"-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio"}
	if uuid != "" {
		args = append(args, "-uuid", uuid)
	}
	net := []string{"-netdev", "tap,id=n0,ifname=" + testBootTap + ",script=no,downscript=no"}
	if o.Firmware == "bios" {
		args = append(args, "-machine", "pc,accel=tcg")
		args = append(args, net...)
		return append(args, "-device", "e1000,netdev=n0,mac="+mac+",bootindex=1", "-boot", "n"), nil
	}
	vars := filepath.Join(dir, "OVMF_VARS.fd")
	b, err := os.ReadFile(ovmfVars)
	if err == nil {
		err = os.WriteFile(vars, b, 0o644)
	}
	if err != nil {
		return nil, fmt.Errorf("test-boot: OVMF vars: %w", err)
	}
	args = append(args, "-machine", "q35,accel=tcg",
		"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+ovmfCode,
		"-drive", "if=pflash,format=raw,unit=1,file="+vars)
	args = append(args, net...)
	args = append(args, "-device", "virtio-net-pci,netdev=n0,mac="+mac+",bootindex=1,romfile=")
	off := "IPv6PXESupport"
	if o.Family == 6 {
		off = "IPv4PXESupport"
	}
	return append(args, "-fw_cfg", "name=opt/org.tianocore/"+off+",string=n"), nil
}

const testBootTap = "kstap0"

// netns is the test boot's private network namespace.
type netns struct {
	name string
}

func newNetns(ctx context.Context, n SandboxNet) (*netns, error) {
	var rb [3]byte
	rand.Read(rb[:])
	ns := &netns{name: fmt.Sprintf("kstb-%d-%s", os.Getpid(), hex.EncodeToString(rb[:]))}
	steps := [][]string{
		{"netns", "add", ns.name},
		{"-n", ns.name, "link", "set", "lo", "up"},
		{"netns", "exec", ns.name, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0"},
		{"-n", ns.name, "link", "add", SandboxBridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
	}
	for _, a := range n.Addrs {
		step := []string{"-n", ns.name, "addr", "add", a.String(), "dev", SandboxBridge}
		if a.Addr().Is6() {
			step = append(step, "nodad")
		}
		steps = append(steps, step)
	}
	steps = append(steps,
		[]string{"-n", ns.name, "link", "set", SandboxBridge, "up"},
		[]string{"-n", ns.name, "tuntap", "add", "dev", testBootTap, "mode", "tap"},
		[]string{"-n", ns.name, "link", "set", testBootTap, "master", SandboxBridge},
		[]string{"-n", ns.name, "link", "set", testBootTap, "up"},
	)
	for i, s := range steps {
		if out, err := exec.CommandContext(ctx, "ip", s...).CombinedOutput(); err != nil {
			if i > 0 {
				ns.remove()
			}
			return nil, fmt.Errorf("test-boot: ip %s: %w: %s", strings.Join(s, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return ns, nil
}

// remove deletes the namespace, which takes the bridge and tap with it.
// The processes in it are the test boot's own and were stopped before.
func (ns *netns) remove() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	exec.CommandContext(ctx, "ip", "netns", "del", ns.name).Run()
}

// proc is a process the test boot started in its namespace.
type proc struct {
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	mu   sync.Mutex
	out  bytes.Buffer // what it printed so far, for waitFor
	once sync.Once
}

// start runs argv in the namespace with its output in logPath (and tee,
// if set). `ip netns exec` execs argv, so the process is argv itself.
func (ns *netns) start(ctx context.Context, logPath string, tee io.Writer, argv ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	p := &proc{log: f, done: make(chan struct{})}
	p.cmd = exec.Command("ip", append([]string{"netns", "exec", ns.name}, argv...)...)
	pr, pw := io.Pipe()
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	// Own process group, so stop takes timeout(1) and QEMU together; and
	// killed by the kernel if kickstand dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		f.Close()
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := strings.ReplaceAll(sc.Text(), "\r", "")
			p.mu.Lock()
			if p.out.Len() < 1<<20 {
				p.out.WriteString(line + "\n")
			}
			p.mu.Unlock()
			fmt.Fprintln(f, line)
			if tee != nil {
				fmt.Fprintln(tee, line)
			}
		}
		io.Copy(io.Discard, pr)
	}()
	go func() {
		p.cmd.Wait()
		pw.Close()
		close(p.done)
	}()
	go func() {
		select {
		case <-ctx.Done():
			p.stop()
		case <-p.done:
		}
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitFor waits until the process printed s; it fails if it exits first.
func (p *proc) waitFor(ctx context.Context, s string, d time.Duration) error {
	deadline := time.After(d)
	for {
		p.mu.Lock()
		out := p.out.String()
		p.mu.Unlock()
		if strings.Contains(out, s) {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("exited before %q:\n%s", s, lastLines(out, 15))
		case <-deadline:
			return fmt.Errorf("no %q after %s:\n%s", s, d, lastLines(out, 15))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop ends the process: SIGTERM to its group (the sandbox flushes its
// timeline), SIGKILL after five seconds.
func (p *proc) stop() {
	p.once.Do(func() {
		if !p.exited() {
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(5 * time.Second):
				syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
				<-p.done
			}
		}
		p.log.Close()
	})
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

// ansiRE matches the terminal escapes firmware writes to its console.
var ansiRE = regexp.MustCompile(`\x1b(\[[0-9;?]*[A-Za-z]|[()][0-9A-B]|[=>c])`)

// tailBuffer keeps the last lines written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []string
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		b.buf = append(b.buf, ansiRE.ReplaceAllString(l, ""))
	}
	if len(b.buf) > b.max {
		b.buf = b.buf[len(b.buf)-b.max:]
	}
	return len(p), nil
}

func (b *tailBuffer) lines(n int) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.buf
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return append([]string(nil), l...)
}
