package storm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
)

// Target is one kickstand server and the link the simulator reaches it on.
type Target struct {
	// Server is the server's address: DHCP (port 67), TFTP, HTTP.
	Server netip.Addr `json:"server"`
	// Local is the simulator's address on the link: the relay address
	// (giaddr) DHCP replies come back to, and the source of TFTP and HTTP.
	Local netip.Addr `json:"local"`
	// HTTPPort is the server's HTTP port for the iPXE script (default 8080).
	HTTPPort int `json:"http_port,omitempty"`
}

// Config is one storm.
type Config struct {
	// Machines is how many machines power on; machine i has MAC(i).
	Machines int `json:"machines"`
	// First is the index of the first machine (several simulators can
	// split one inventory).
	First int `json:"first,omitempty"`
	// Targets share the machines round-robin (two servers on one store).
	Targets []Target `json:"targets"`
	// Spread is over how long the machines power on (uniformly); 0 is all
	// at once, the worst case.
	Spread time.Duration `json:"spread,omitempty"`
	// Timeout bounds each machine from power-on to its callback.
	Timeout time.Duration `json:"timeout,omitempty"`
	// TFTPBlksize is the block size the loader is asked for with.
	TFTPBlksize int `json:"tftp_blksize,omitempty"`
	// LinkCapacity is the link's measured bytes per second (MeasureLink),
	// for the report; 0 leaves the comparison out.
	LinkCapacity float64 `json:"link_capacity,omitempty"`
	// InstallTime is how long the installer runs between fetching its
	// kickstart and calling back (an idle wait: the packages come from
	// a mirror, not from kickstand).
	InstallTime time.Duration `json:"install_time,omitempty"`
	// RelayAll forwards every machine's DHCP to every target, as a relay
	// agent with one helper address per server does (or one broadcast
	// domain with two servers): the first OFFER wins, and the machine
	// boots from the server that ACKed it. Without it machines are split
	// round-robin and each talks to one server only.
	RelayAll bool `json:"relay_all,omitempty"`
	// Reboots is how many times a machine whose boot failed at any step
	// starts over from DHCP, as a machine does when its ROM or installer
	// gives up and it reboots (after RebootDelay). 0: a failure is final.
	Reboots     int           `json:"reboots,omitempty"`
	RebootDelay time.Duration `json:"reboot_delay,omitempty"`
	// KillPIDs are the targets' server processes (by index; 0 for one
	// that may not be killed). Once KillAfter machines are built, the one
	// with the most installs in flight is SIGKILLed: a server dying in the
	// middle of the storm, where it hurts most.
	KillPIDs  []int `json:"kill_pids,omitempty"`
	KillAfter int   `json:"kill_after,omitempty"`
}

// Steps of a machine's boot, in order.
var Steps = []string{"dhcp", "tftp", "script", "kernel", "initrd", "kickstart", "callback"}

// Report is a storm's outcome.
type Report struct {
	Machines  int            `json:"machines"`
	Succeeded int            `json:"succeeded"`
	Failures  map[string]int `json:"failures"` // step -> machines that failed there
	// Errors are the first few failures' messages.
	Errors []string `json:"errors,omitempty"`
	// Steps are the latency of each step, and "total" of the whole boot,
	// over the machines that completed the step.
	Steps []StepStats `json:"steps"`
	// PerTarget counts the machines that completed, per target.
	PerTarget    []int `json:"per_target"`
	DHCPAttempts int   `json:"dhcp_max_attempts"`
	TFTPBusy     int64 `json:"tftp_busy_retries"`
	// CallbackRetries counts callbacks repeated as curl --retry does.
	CallbackRetries int64 `json:"callback_retries"`
	// DHCPRetransmits counts DHCP packets sent again for want of an
	// answer; Reboots the boots started over (Config.Reboots), and
	// Rebooted the machines that needed at least one.
	DHCPRetransmits int64 `json:"dhcp_retransmits"`
	Reboots         int   `json:"reboots"`
	Rebooted        int   `json:"rebooted"`
	// FoundBuilt counts machines whose callback landed though its answer
	// was lost: their next boot found them built and booted the disk.
	FoundBuilt int `json:"found_built,omitempty"`
	// Killed is the target whose server was killed (-1: none), KilledAt
	// when, from the start, BuiltAtKill how many machines were built by
	// then and InFlightAtKill how many were installing from it.
	Killed         int           `json:"killed"`
	KilledAt       time.Duration `json:"killed_at_ns,omitempty"`
	BuiltAtKill    int           `json:"built_at_kill,omitempty"`
	InFlightAtKill int           `json:"in_flight_at_kill,omitempty"`
	KillError      string        `json:"kill_error,omitempty"`
	Wall           time.Duration `json:"wall_ns"`
	Bytes          int64         `json:"bytes"`
	Throughput     float64       `json:"throughput_bytes_per_s"`
	LinkCapacity   float64       `json:"link_capacity_bytes_per_s,omitempty"`
}

// StepStats are one step's latency percentiles.
type StepStats struct {
	Step  string        `json:"step"`
	Count int           `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P95   time.Duration `json:"p95_ns"`
	P99   time.Duration `json:"p99_ns"`
	Max   time.Duration `json:"max_ns"`
}

// MAC is machine i's MAC address: locally administered (02:), so it can
// never be a real NIC's.
func MAC(i int) net.HardwareAddr {
	return net.HardwareAddr{0x02, 0x5b, 0x00, byte(i >> 16), byte(i >> 8), byte(i)}
}

// machine is one simulated machine's record.
type machine struct {
	took   map[string]time.Duration // the steps of its last boot, and "total" from power-on
	failed string                   // the step that failed, "" when it completed
	err    error
	target int
	dhcpN  int // DORA attempts of its last boot
	boots  int
	// calledBack says a boot got as far as its built callback; local
	// that the last boot found the host built and booted its disk.
	calledBack, local bool
}

// counters are the storm's shared tallies.
type counters struct {
	bytes, busy, retries, resent atomic.Int64
	built                        atomic.Int64
	// inFlight counts, per target, the machines installing from it (ACKed,
	// not yet built or failed).
	inFlight []atomic.Int64
}

// Run powers on the machines and follows each through its boot. It fails
// only when it cannot start (no relay socket); machines that fail are in
// the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Machines <= 0 || len(cfg.Targets) == 0 {
		return nil, errors.New("storm: no machines or no targets")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Minute
	}
	if cfg.TFTPBlksize == 0 {
		cfg.TFTPBlksize = 1468
	}
	if cfg.RebootDelay <= 0 {
		cfg.RebootDelay = time.Second
	}
	c := counters{inFlight: make([]atomic.Int64, len(cfg.Targets))}
	w := &waiters{m: map[dhcpv4.TransactionID]chan *dhcpv4.DHCPv4{}}
	all := make(relays, len(cfg.Targets))
	for i, t := range cfg.Targets {
		r, err := newRelay(t.Local, t.Server, w, &c.resent)
		if err != nil {
			return nil, fmt.Errorf("storm: %w", err)
		}
		defer r.close()
		all[i] = r
	}
	if err := addSources(ctx, cfg.First, cfg.Machines); err != nil {
		return nil, fmt.Errorf("storm: %w", err)
	}
	defer delSources(cfg.First, cfg.Machines)
	rep := &Report{Machines: cfg.Machines, Failures: map[string]int{}, PerTarget: make([]int, len(cfg.Targets)), LinkCapacity: cfg.LinkCapacity, Killed: -1}
	start := time.Now()
	var killOnce sync.Once
	onBuilt := func() {
		if n := c.built.Add(1); len(cfg.KillPIDs) > 0 && n >= int64(max(cfg.KillAfter, 1)) {
			killOnce.Do(func() {
				victim, busiest := -1, int64(-1)
				for k := range min(len(cfg.KillPIDs), len(c.inFlight)) {
					if f := c.inFlight[k].Load(); cfg.KillPIDs[k] > 0 && f > busiest {
						victim, busiest = k, f
					}
				}
				if victim < 0 {
					rep.KillError = "no server to kill"
					return
				}
				if err := syscall.Kill(cfg.KillPIDs[victim], syscall.SIGKILL); err != nil {
					rep.KillError = fmt.Sprintf("kill %d: %v", cfg.KillPIDs[victim], err)
				}
				rep.Killed, rep.KilledAt, rep.BuiltAtKill, rep.InFlightAtKill = victim, time.Since(start), int(n), int(busiest)
			})
		}
	}
	ms := make([]machine, cfg.Machines)
	var wg sync.WaitGroup
	for i := range ms {
		if cfg.Spread > 0 {
			at := start.Add(time.Duration(int64(cfg.Spread) * int64(i) / int64(cfg.Machines)))
			select {
			case <-time.After(time.Until(at)):
			case <-ctx.Done():
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			mctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			via := all
			if !cfg.RelayAll {
				via = all[i%len(all) : i%len(all)+1]
			}
			ms[i] = boot(mctx, cfg, via, MAC(cfg.First+i), &c)
			if ms[i].failed == "" {
				onBuilt()
			}
		}()
	}
	wg.Wait()
	rep.Wall = time.Since(start)
	rep.Bytes, rep.TFTPBusy, rep.CallbackRetries, rep.DHCPRetransmits = c.bytes.Load(), c.busy.Load(), c.retries.Load(), c.resent.Load()
	if rep.Wall > 0 {
		rep.Throughput = float64(rep.Bytes) / rep.Wall.Seconds()
	}
	samples := map[string][]time.Duration{}
	for _, m := range ms {
		rep.DHCPAttempts = max(rep.DHCPAttempts, m.dhcpN)
		rep.Reboots += m.boots - 1
		if m.boots > 1 {
			rep.Rebooted++
		}
		if m.local {
			rep.FoundBuilt++
		}
		for s, d := range m.took {
			samples[s] = append(samples[s], d)
		}
		if m.failed != "" {
			rep.Failures[m.failed]++
			if len(rep.Errors) < 10 {
				rep.Errors = append(rep.Errors, m.err.Error())
			}
			continue
		}
		rep.Succeeded++
		rep.PerTarget[m.target]++
	}
	for _, s := range append(append([]string(nil), Steps...), "total") {
		rep.Steps = append(rep.Steps, stats(s, samples[s]))
	}
	return rep, nil
}

// stats computes percentiles by nearest rank.
func stats(step string, d []time.Duration) StepStats {
	st := StepStats{Step: step, Count: len(d)}
	if len(d) == 0 {
		return st
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	rank := func(p float64) time.Duration {
		i := int(float64(len(d))*p+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	st.P50, st.P95, st.P99, st.Max = rank(0.50), rank(0.95), rank(0.99), d[len(d)-1]
	return st
}

// boot is one machine from power-on: boots until one completes or
// cfg.Reboots more have failed. A failed boot's steps are not counted; the
// total runs from power-on, so a reboot shows in it.
func boot(ctx context.Context, cfg Config, via relays, mac net.HardwareAddr, c *counters) machine {
	begin := time.Now()
	var m machine
	for {
		boots := m.boots
		m = attempt(ctx, cfg, via, mac, c, m.calledBack)
		m.boots = boots + 1
		if m.failed == "" {
			m.took["total"] = time.Since(begin)
			return m
		}
		if m.boots > cfg.Reboots || ctx.Err() != nil {
			return m
		}
		select {
		case <-time.After(cfg.RebootDelay):
		case <-ctx.Done():
			return m
		}
	}
}

// attempt is one boot: DHCP, the loader over TFTP, the iPXE script,
// kernel and initrd, the kickstart, and the built callback, all from the
// server that ACKed.
func attempt(ctx context.Context, cfg Config, via relays, mac net.HardwareAddr, c *counters, calledBack bool) machine {
	m := machine{took: map[string]time.Duration{}, calledBack: calledBack}
	step := func(name string, fn func() error) bool {
		at := time.Now()
		if err := fn(); err != nil {
			m.failed, m.err = name, fmt.Errorf("%s %s: %w", mac, name, err)
			return false
		}
		m.took[name] = time.Since(at)
		return true
	}
	var l lease
	var t Target
	if !step("dhcp", func() (err error) {
		if l, err = via.dora(ctx, mac); err != nil {
			return err
		}
		m.dhcpN = l.attempts
		m.target = slices.IndexFunc(cfg.Targets, func(t Target) bool { return t.Server == l.server })
		if m.target < 0 {
			return fmt.Errorf("ACK from %v, which is none of the targets", l.server)
		}
		t = cfg.Targets[m.target]
		c.inFlight[m.target].Add(1)
		return nil
	}) {
		return m
	}
	defer c.inFlight[m.target].Add(-1)
	// From here on the machine speaks from the address it was leased, as
	// a real one does: that address is what kickstand identifies it by.
	// Each machine is its own client: its own connections, as separate
	// machines have.
	tr := &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(l.addr, 0)), Timeout: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 1,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	get := func(u string, keep *strings.Builder) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		var w io.Writer = io.Discard
		if keep != nil {
			w = keep
		}
		n, err := io.Copy(w, resp.Body)
		c.bytes.Add(n)
		if err != nil {
			return fmt.Errorf("GET %s: %w", u, err)
		}
		if resp.ContentLength >= 0 && n != resp.ContentLength {
			return fmt.Errorf("GET %s: %d of %d bytes", u, n, resp.ContentLength)
		}
		return nil
	}

	if !step("tftp", func() error {
		if l.bootFile == "" || strings.Contains(l.bootFile, "://") {
			return fmt.Errorf("ACK names no TFTP loader (boot file %q)", l.bootFile)
		}
		server := l.next
		if !server.IsValid() {
			server = t.Server
		}
		// A busy server is asked again, as a ROM that got an ERROR does.
		for wait := 200 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			n, err := tftpGet(ctx, l.addr, server, l.bootFile, cfg.TFTPBlksize, time.Second)
			c.bytes.Add(n)
			if !errors.Is(err, errBusy) {
				return err
			}
			c.busy.Add(1)
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return fmt.Errorf("tftp %s: busy until %w", l.bootFile, ctx.Err())
			}
		}
	}) {
		return m
	}
	var bs bootScript
	if !step("script", func() error {
		port := t.HTTPPort
		if port == 0 {
			port = 8080
		}
		var b strings.Builder
		u := fmt.Sprintf("http://%s/boot.ipxe?mac=%s&arch=0", netip.AddrPortFrom(t.Server, uint16(port)), mac)
		if err := get(u, &b); err != nil {
			return err
		}
		var err error
		if bs, err = parseIPXE(b.String()); err != nil {
			if bs.kernel == "" && calledBack && strings.Contains(b.String(), "\nsanboot ") {
				// The callback of an earlier boot landed though its
				// answer was lost (the server died in between): the
				// host is built and boots its disk, as the machine does.
				m.local = true
				return nil
			}
			return err
		}
		if bs.kickstart == "" {
			return errors.New("the script's kernel command line has no inst.ks= (is the host in install state?)")
		}
		return nil
	}) || m.local {
		return m
	}
	if !step("kernel", func() error { return get(bs.kernel, nil) }) {
		return m
	}
	if !step("initrd", func() error {
		for _, u := range bs.initrds {
			if err := get(u, nil); err != nil {
				return err
			}
		}
		return nil
	}) {
		return m
	}
	if !step("kickstart", func() error {
		var b strings.Builder
		if err := get(bs.kickstart, &b); err != nil {
			return err
		}
		if b.Len() == 0 {
			return errors.New("empty kickstart")
		}
		return nil
	}) {
		return m
	}
	if cfg.InstallTime > 0 {
		select {
		case <-time.After(cfg.InstallTime):
		case <-ctx.Done():
			m.failed, m.err = "callback", fmt.Errorf("%s installing: %w", mac, ctx.Err())
			return m
		}
	}
	if !step("callback", func() error {
		m.calledBack = true
		u, err := callbackURL(bs.kickstart)
		if err != nil {
			return err
		}
		// As the rendered %post does: curl --retry 10 --retry-delay 3,
		// which retries errors, timeouts and 408/429/5xx answers.
		for try := 0; ; try++ {
			err = post(ctx, client, u)
			var st statusError
			if err == nil || try == 10 || (errors.As(err, &st) && st.code < 500 && st.code != 408 && st.code != 429) {
				return err
			}
			c.retries.Add(1)
			select {
			case <-time.After(3 * time.Second):
			case <-ctx.Done():
				return fmt.Errorf("%w (after %d retries, last: %v)", ctx.Err(), try+1, err)
			}
		}
	}) {
		return m
	}
	return m
}

type statusError struct {
	code int
	msg  string
}

func (e statusError) Error() string { return e.msg }

func post(ctx context.Context, client *http.Client, u string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return statusError{resp.StatusCode, fmt.Sprintf("POST %s: %s", u, resp.Status)}
	}
	return nil
}

// WriteText prints the report as the benchmark's table.
func (r *Report) WriteText(w io.Writer) {
	fmt.Fprintf(w, "boot storm: %d machines, %d succeeded, %d failed, in %v\n", r.Machines, r.Succeeded, r.Machines-r.Succeeded, r.Wall.Round(time.Millisecond))
	if len(r.Failures) > 0 {
		var parts []string
		for _, s := range Steps {
			if n := r.Failures[s]; n > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, n))
			}
		}
		fmt.Fprintf(w, "failures by step: %s\n", strings.Join(parts, ", "))
		for _, e := range r.Errors {
			fmt.Fprintf(w, "  %s\n", e)
		}
	}
	if len(r.PerTarget) > 1 {
		fmt.Fprintf(w, "completed per server: %v\n", r.PerTarget)
	}
	fmt.Fprintf(w, "%-10s %6s %10s %10s %10s %10s\n", "step", "count", "p50", "p95", "p99", "max")
	for _, s := range r.Steps {
		fmt.Fprintf(w, "%-10s %6d %10s %10s %10s %10s\n", s.Step, s.Count, round(s.P50), round(s.P95), round(s.P99), round(s.Max))
	}
	fmt.Fprintf(w, "data: %.1f MB in %v = %.1f MB/s", float64(r.Bytes)/1e6, r.Wall.Round(time.Millisecond), r.Throughput/1e6)
	if r.LinkCapacity > 0 {
		fmt.Fprintf(w, " = %.0f%% of the link's measured %.1f MB/s", 100*r.Throughput/r.LinkCapacity, r.LinkCapacity/1e6)
		if ideal, ratio := r.LinkRatio(); ratio > 0 {
			fmt.Fprintf(w, "\np99 time to built %v vs %v the measured link allows for the bytes moved: %.2fx (target <= 2x)",
				round(r.total().P99), round(ideal), ratio)
		}
	}
	fmt.Fprintf(w, "\nDHCP: at most %d DORA attempts per machine, %d packets retransmitted; TFTP: %d busy refusals retried; callbacks: %d retries\n",
		r.DHCPAttempts, r.DHCPRetransmits, r.TFTPBusy, r.CallbackRetries)
	fmt.Fprintf(w, "reboots: %d, of %d machines", r.Reboots, r.Rebooted)
	if r.FoundBuilt > 0 {
		fmt.Fprintf(w, " (%d found built: their callback landed, its answer was lost)", r.FoundBuilt)
	}
	fmt.Fprintln(w)
	if r.Killed >= 0 {
		fmt.Fprintf(w, "server %d killed at %v, %d machines built by then, %d installing from it\n", r.Killed, r.KilledAt.Round(time.Millisecond), r.BuiltAtKill, r.InFlightAtKill)
	}
	if r.KillError != "" {
		fmt.Fprintf(w, "kill failed: %s\n", r.KillError)
	}
}

// total is the end-to-end step.
func (r *Report) total() StepStats {
	for _, s := range r.Steps {
		if s.Step == "total" {
			return s
		}
	}
	return StepStats{}
}

// LinkRatio is the time the measured link needs for the bytes the storm
// moved, and the p99 time to built over it: 1 is a storm as fast as the
// wire, the target is within 2.
func (r *Report) LinkRatio() (ideal time.Duration, ratio float64) {
	if r.LinkCapacity <= 0 || r.Bytes <= 0 {
		return 0, 0
	}
	ideal = time.Duration(float64(r.Bytes) / r.LinkCapacity * float64(time.Second))
	return ideal, float64(r.total().P99) / float64(ideal)
}

func round(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond).String()
	case d >= time.Second:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(100 * time.Microsecond).String()
	}
}

// WaitReady polls each target's /healthz until it answers 200 (the server
// has synced its inventory and listens), or ctx ends.
func WaitReady(ctx context.Context, targets []Target) error {
	for _, t := range targets {
		port := t.HTTPPort
		if port == 0 {
			port = 8080
		}
		u := fmt.Sprintf("http://%s/healthz", netip.AddrPortFrom(t.Server, uint16(port)))
		for {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("storm: %s not ready: %w (last: %v)", u, ctx.Err(), err)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}
