package dhcpengine_test

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine/dhcpcap"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// killFamily is what the kill -9 test needs to know of a family.
type killFamily struct {
	family  int
	labOpt  vmtest.LabOption
	addrs   [][]string // ip commands in a namespace ("srv" or "cli"): addresses for the run
	section string     // the config's DHCP section; %s is the interface
	filter  string     // tcpdump's
	ready   string     // kickstand's log line once it listens
}

var killFamilies = []killFamily{
	{family: 4, labOpt: vmtest.NoIPv6(),
		addrs: [][]string{{"srv", "addr", "add", "198.18.0.1/15", "dev", "BRIDGE"}, {"cli", "addr", "add", "198.18.0.2/15", "dev", vmtest.CliVeth}},
		section: `dhcp:
  enabled: true
  mode: server
  interfaces: [%s]
  subnets:
    - subnet: 198.18.0.0/15
      pool: 198.18.1.0-198.19.255.254
      lease_time: 1h
`, filter: "udp and (port 67 or port 68)", ready: "DHCPv4 listening"},
	{family: 6, labOpt: vmtest.IPv6Only(),
		section: `dhcp6:
  enabled: true
  interfaces: [%s]
  subnets:
    - prefix: 2001:db8::/64
      pool: 2001:db8::1:0-2001:db8::ffff:ffff
      preferred_lifetime: 50m
      valid_lifetime: 1h
`, filter: "udp and (port 546 or port 547)", ready: "DHCPv6 listening"},
}

// TestKill9KeepsEveryBinding is the durability promise, for each family:
// during a 2,000-client perfdhcp run, the real kickstand binary is killed
// with SIGKILL and restarted. Every ACK or Reply captured on the wire must
// be in the store afterwards, bound to the client it was sent to, and no
// address may have been given to two clients.
func TestKill9KeepsEveryBinding(t *testing.T) {
	for _, fam := range killFamilies {
		t.Run(fmt.Sprintf("v%d", fam.family), func(t *testing.T) { kill9(t, fam) })
	}
}

// familyLab is a lab for fam with the run's addresses.
func familyLab(t *testing.T, fam killFamily, name string) *vmtest.Lab {
	t.Helper()
	lab := enginetest.NewLab(t, name, fam.labOpt)
	vmtest.Need(t, "perfdhcp", "tcpdump")
	for _, step := range fam.addrs {
		args := append([]string{"-n", map[string]string{"srv": lab.Srv, "cli": lab.Cli}[step[0]]}, step[1:]...)
		for i, a := range args {
			if a == "BRIDGE" {
				args[i] = lab.Bridge
			}
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return lab
}

// serveConfig writes a kickstand config serving fam on the lab's bridge,
// its state under dir, its leases in spec (a directory or postgres:// URL;
// empty: dir/data).
func serveConfig(t *testing.T, fam killFamily, lab *vmtest.Lab, dir, spec string) string {
	t.Helper()
	cfgPath := filepath.Join(dir, "kickstand.yaml")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	cfg := fmt.Sprintf("server:\n  http: \"127.0.0.1:8080\"\n  data_dir: %s\n  templates: %s\n", filepath.Join(dir, "data"), filepath.Join(dir, "templates"))
	if spec != "" {
		cfg += fmt.Sprintf("  store: %q\n", spec)
	}
	cfg += "menu:\n  unknown: ignore\n" + fmt.Sprintf(fam.section, lab.Bridge)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}

// serve starts the kickstand binary with cfgPath in the lab's server
// namespace, logging to logPath, and waits until it listens.
func serve(t *testing.T, ctx context.Context, lab *vmtest.Lab, fam killFamily, bin, cfgPath, logPath string) *exec.Cmd {
	t.Helper()
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	cmd := lab.Cmd(ctx, "srv", bin, "serve", "-c", cfgPath)
	cmd.Stdout, cmd.Stderr = lf, lf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	enginetest.WaitFile(t, logPath, fam.ready, 60*time.Second)
	return cmd
}

// capture runs tcpdump on the lab's client side; stop ends it and returns
// the DHCP messages it saw.
func capture(t *testing.T, ctx context.Context, lab *vmtest.Lab, fam killFamily, dir string) (stop func() []dhcpcap.Captured) {
	t.Helper()
	pcap := filepath.Join(dir, "dhcp.pcap")
	tdLog := filepath.Join(dir, "tcpdump.log")
	tdOut, _ := os.Create(tdLog)
	td := lab.Cmd(ctx, "cli", "tcpdump", "-i", vmtest.CliVeth, "-n", "-U", "-s", "1500", "-w", pcap, fam.filter)
	td.Stdout, td.Stderr = tdOut, tdOut
	if err := td.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { td.Process.Kill(); tdOut.Close() })
	enginetest.WaitFile(t, tdLog, "listening on", 10*time.Second)
	return func() []dhcpcap.Captured {
		time.Sleep(500 * time.Millisecond)
		td.Process.Signal(syscall.SIGINT)
		td.Wait()
		f, err := os.Open(pcap)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		captured, err := dhcpcap.ReadPcap(f)
		if err != nil {
			t.Fatal(err)
		}
		return captured
	}
}

// perfdhcp runs n exchanges at rate from the lab's client side, its
// clients' MACs (DUID-LLs) based on 02:<base>:00:00:00:00, so that two
// runs' clients differ.
func perfdhcp(ctx context.Context, lab *vmtest.Lab, fam killFamily, rate, n, base int) *exec.Cmd {
	b := fmt.Sprintf("mac=02:%02x:00:00:00:00", base)
	if fam.family == 6 {
		b = fmt.Sprintf("duid=0003000102%02x00000000", base)
	}
	return lab.Cmd(ctx, "cli", "perfdhcp", fmt.Sprintf("-%d", fam.family), "-l", vmtest.CliVeth, "-b", b,
		"-r", fmt.Sprint(rate), "-R", fmt.Sprint(n), "-n", fmt.Sprint(n), "-p", "30")
}

// checkBindings asserts that every binding seen on the wire is in st,
// bound to the client it was sent to, that no address went to two clients
// and no client got two addresses; it returns how many clients were bound.
//
// Two servers on two links (TestTwoServersOnePostgres) pass
// perLink: perfdhcp on each link draws its clients' identities from the
// same space, so one DUID can stand for a client on each link; a client is
// then checked for one address within its own link only.
func checkBindings(t *testing.T, ctx context.Context, st store.Store, family int, bound []dhcpcap.Captured, perLink ...[]dhcpcap.Captured) int {
	t.Helper()
	leases, err := st.Leases(ctx, family)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[netip.Addr]store.Lease{}
	for _, l := range leases {
		stored[l.Addr] = l
	}
	givenTo := map[netip.Addr]string{}
	holds := map[string]netip.Addr{}
	lost, dups := 0, 0
	oneAddress := func(caps []dhcpcap.Captured) {
		held := map[string]netip.Addr{}
		for _, c := range caps {
			for _, a := range c.Addrs {
				if prev, ok := held[c.Client]; ok && prev != a {
					t.Errorf("%s was given %v and %v", c.Client, prev, a)
				}
				held[c.Client] = a
			}
		}
	}
	if len(perLink) == 0 {
		oneAddress(bound)
	}
	for _, l := range perLink {
		oneAddress(l)
	}
	for _, c := range bound {
		for _, a := range c.Addrs {
			holds[c.Client] = a
			if prev, ok := givenTo[a]; ok && prev != c.Client {
				dups++
				if dups <= 10 {
					t.Errorf("DUPLICATE: %v given to %s and to %s", a, prev, c.Client)
				}
			}
			givenTo[a] = c.Client
			l, ok := stored[a]
			holder := l.MAC
			if family == 6 {
				holder = l.ClientID
			}
			if !ok || holder != c.Client || l.State != store.LeaseBound {
				lost++
				if lost <= 10 {
					t.Errorf("LOST: %s of %v to %s at %s is not in the store (row %+v)", c.Type, a, c.Client, c.At.Format("15:04:05.000"), l)
				}
			}
		}
	}
	t.Logf("v%d: %d bindings on the wire, %d clients, %d distinct addresses, %d duplicates, %d lost; %d lease rows",
		family, len(bound), len(holds), len(givenTo), dups, lost, len(leases))
	return len(holds)
}

func boundOnly(captured []dhcpcap.Captured) []dhcpcap.Captured {
	var out []dhcpcap.Captured
	for _, c := range captured {
		if c.Bound() {
			out = append(out, c)
		}
	}
	return out
}

func kill9(t *testing.T, fam killFamily) {
	lab := familyLab(t, fam, fmt.Sprintf("ksk%d", fam.family))
	bin := enginetest.BuildKickstand(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cfgPath := serveConfig(t, fam, lab, dir, "")
	stopCapture := capture(t, ctx, lab, fam, dir)
	ks := serve(t, ctx, lab, fam, bin, cfgPath, filepath.Join(dir, "kickstand1.log"))
	if fam.family == 6 {
		time.Sleep(1500 * time.Millisecond) // a fresh bridge drops multicast for about a second
	}
	var perfOut bytes.Buffer
	// 2,000 clients at 500 exchanges a second: about four seconds of
	// traffic, bounded by -p in case exchanges stall.
	perf := perfdhcp(ctx, lab, fam, 500, 2000, 1)
	perf.Stdout, perf.Stderr = &perfOut, &perfOut
	if err := perf.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := ks.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	ks.Wait()
	time.Sleep(500 * time.Millisecond)
	ks = serve(t, ctx, lab, fam, bin, cfgPath, filepath.Join(dir, "kickstand2.log"))
	perfErr := perf.Wait()
	t.Logf("perfdhcp (%v):\n%s", perfErr, enginetest.LastLines(perfOut.String(), 25))
	bound := boundOnly(stopCapture())
	ks.Process.Signal(syscall.SIGTERM)
	if err := ks.Wait(); err != nil {
		t.Logf("kickstand exit after SIGTERM: %v", err)
	}
	before := 0
	for _, c := range bound {
		if c.At.Before(killedAt) {
			before++
		}
	}
	t.Logf("%d bindings on the wire, %d before the kill -9", len(bound), before)
	if before < 100 || len(bound)-before < 100 {
		for i := 1; i <= 2; i++ {
			b, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("kickstand%d.log", i)))
			t.Logf("kickstand%d.log:\n%s", i, enginetest.LastLines(string(b), 20))
		}
		t.Fatalf("too few bindings around the kill to test anything (%d before, %d after)", before, len(bound)-before)
	}
	st, err := sqlstore.OpenSQLite(ctx, filepath.Join(dir, "data"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkBindings(t, ctx, st, fam.family, bound)
}
