package hardening

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// The trust holes of the lifecycle issue, each tried against the real
// binary from a neighbouring namespace (the lab's client side), and each
// refused: identity comes from a static address or a live lease, never from
// what a client names.
const trustConfig = `server:
  http: ":8080"
  address_v4: 192.0.2.1
  address_v6: "2001:db8::1"
  data_dir: data
  templates: templates
  token_ttl: 1h
menu:
  unknown: ignore
syslog:
  enabled: true
  listen: ":514"
dhcp:
  enabled: true
  mode: server
  interfaces: [ksbr0]
  subnets:
    - subnet: 192.0.2.0/24
      pool: 192.0.2.100-192.0.2.199
      routers: [192.0.2.1]
      lease_time: 1h
distros:
  - name: d
    release: rhel9
    arch: x86_64
    tree: tree
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: d
    kickstart: t.ks
hosts:
  - name: victim4
    macs: ["52:54:00:00:00:10"]
    ipv4: 192.0.2.10/24
    profile: p
    netboot: install
    vars: {rootpw: "$6$trustsalt$trusthash"}
  - name: leased
    macs: ["52:54:00:00:00:11"]
    profile: p
    netboot: install
  - name: v6host
    macs: ["52:54:00:00:00:12"]
    ipv6: "2001:db8::20/64"
    profile: p
    netboot: install
`

type trustLab struct {
	t   *testing.T
	ctx context.Context
	lab *vmtest.Lab
	fx  *fixture
	bin string
	srv *proc
}

func newTrustLab(t *testing.T, name string) *trustLab {
	vmtest.Need(t, "curl", "udhcpc")
	ctx, cancel := context.WithTimeout(context.Background(), budget(4*time.Minute))
	t.Cleanup(cancel)
	lab := newLab(t, ctx, name)
	l := &trustLab{t: t, ctx: ctx, lab: lab, bin: kickstandBin(t)}
	l.fx = newFixture(t, trustConfig, map[string]string{"t.ks": "text\nrootpw --iscrypted {{ index .host.vars \"rootpw\" | printf \"%v\" }}\nautopart\n"})
	// The client side's MAC is the "leased" host's (for udhcpc), set
	// before any traffic so no neighbour cache holds another.
	must(t, lab.Run(ctx, "cli", "ip", "link", "set", vmtest.CliVeth, "address", "52:54:00:00:00:11"))
	// The attacker's addresses, and the addresses of the hosts as the
	// real machines would have them, all on the client side of the link.
	for _, a := range []string{"192.0.2.99/24", "192.0.2.10/24", "2001:db8::99/64", "2001:db8::20/64"} {
		args := []string{"ip", "addr", "add", a, "dev", vmtest.CliVeth}
		if strings.Contains(a, ":") {
			args = append(args, "nodad")
		}
		must(t, lab.Run(ctx, "cli", args...))
	}
	cmd := lab.Cmd(ctx, "srv", l.bin, "serve", "--config", l.fx.cfg)
	cmd.Dir = l.fx.dir
	l.srv = start(t, cmd, "http listening")
	l.srv.waitLog(t, "dhcp serving", 10*time.Second)
	return l
}

// curl fetches url from the client namespace with the given source
// address and returns the status and body.
func (l *trustLab) curl(from, method, url string, extra ...string) (int, string) {
	l.t.Helper()
	args := append([]string{"curl", "-gsS", "-o", "-", "-w", "\n%{http_code}", "--max-time", "20", "--interface", from, "-X", method}, extra...)
	out, err := l.lab.Output(l.ctx, "cli", append(args, url)...)
	if err != nil {
		l.t.Fatalf("curl %s %s from %s: %v\n%s", method, url, from, err, out)
	}
	i := strings.LastIndex(out, "\n")
	var code int
	fmt.Sscan(out[i+1:], &code)
	return code, out[:i]
}

func (l *trustLab) timeline(host string) string {
	l.t.Helper()
	out, err := l.fx.cli(l.t, l.bin, "host", "timeline", host)
	if err != nil {
		l.t.Fatalf("host timeline %s: %v\n%s", host, err, out)
	}
	return out
}

var ksToken = regexp.MustCompile(`/ks/([A-Z2-7]{26})`)

func TestTrustHoles(t *testing.T) {
	l := newTrustLab(t, "kshtrust")
	const base4, base6 = "http://192.0.2.1:8080", "http://[2001:db8::1]:8080"

	// The host's own request gets its install script and token.
	code, script := l.curl("192.0.2.10", "GET", base4+"/boot.ipxe")
	m := ksToken.FindStringSubmatch(script)
	if code != 200 || m == nil {
		t.Fatalf("victim4's own script: %d\n%s", code, script)
	}
	tok := m[1]

	// Naming a MAC or a host is not identity: the attacker gets no token.
	for _, q := range []string{"?mac=52:54:00:00:00:10", "?host=victim4", "?mac=52:54:00:00:00:10&host=victim4"} {
		for _, from := range []string{"192.0.2.99", "2001:db8::99"} {
			base := base4
			if strings.Contains(from, ":") {
				base = base6
			}
			code, body := l.curl(from, "GET", base+"/boot.ipxe"+q)
			if ksToken.MatchString(body) || strings.Contains(body, "kernel ") {
				t.Errorf("%s from %s: %d, the script installs:\n%s", q, from, code, body)
			}
		}
	}
	// Loader configs named after the victim, from the attacker.
	for _, name := range []string{"pxelinux.cfg/01-52-54-00-00-00-10", "grub.cfg-01-52-54-00-00-00-10", "pxelinux.cfg/C000020A"} {
		if code, body := l.curl("192.0.2.99", "GET", base4+"/"+name); code != 404 || ksToken.MatchString(body) {
			t.Errorf("%s from the attacker: %d\n%s", name, code, body)
		}
	}

	// The token from any other address, of either family, is a 404 and
	// changes nothing: the IPv4-only host's kickstart (root hash) is not
	// served to IPv6 clients, nor a forged callback accepted.
	for _, c := range []struct{ from, method, url string }{
		{"192.0.2.99", "GET", base4 + "/ks/" + tok},
		{"2001:db8::99", "GET", base6 + "/ks/" + tok},
		{"2001:db8::20", "GET", base6 + "/ks/" + tok}, // another host's own address
		{"2001:db8::99", "POST", base6 + "/cb/" + tok + "/built"},
		{"2001:db8::99", "POST", base6 + "/cb/" + tok + "/failed"},
		{"192.0.2.99", "POST", base4 + "/cb/" + tok + "/failed"},
	} {
		code, body := l.curl(c.from, c.method, c.url)
		if code != 404 || strings.Contains(body, "trusthash") {
			t.Errorf("%s %s from %s: %d\n%s", c.method, c.url, c.from, code, body)
		}
	}
	if tl := l.timeline("victim4"); strings.Contains(tl, "callback.") {
		t.Errorf("a forged callback reached the victim's timeline:\n%s", tl)
	}

	// ?mac=<victim> does not file the attacker's requests, nor tie its
	// address, to the victim: its syslog lines do not land there either.
	l.curl("192.0.2.99", "GET", base4+"/boot.ipxe?mac=52:54:00:00:00:10")
	l.syslogUDP("192.0.2.99", "<13>attacker: forged line for the victim")
	time.Sleep(500 * time.Millisecond)
	if tl := l.timeline("victim4"); strings.Contains(tl, "forged line") || strings.Contains(tl, "192.0.2.99") {
		t.Errorf("the attacker wrote into the victim's timeline:\n%s", tl)
	}

	// A host with no static address is itself by its live lease (a real
	// DHCP client); the attacker's address is not it.
	leased := l.udhcpc()
	code, script = l.curl(leased, "GET", base4+"/boot.ipxe")
	m = ksToken.FindStringSubmatch(script)
	if code != 200 || m == nil || !strings.Contains(script, "by DHCP lease") {
		t.Fatalf("the leased host's script from %s: %d\n%s", leased, code, script)
	}
	ltok := m[1]
	if code, _ := l.curl(leased, "GET", base4+"/ks/"+ltok); code != 200 {
		t.Errorf("the leased host's kickstart from its lease: %d", code)
	}
	if code, _ := l.curl("192.0.2.99", "GET", base4+"/ks/"+ltok); code != 404 {
		t.Errorf("the leased host's kickstart from the attacker: %d", code)
	}

	// The victim installs; its token dies with install.
	if code, body := l.curl("192.0.2.10", "GET", base4+"/ks/"+tok); code != 200 || !strings.Contains(body, "trusthash") {
		t.Fatalf("victim4's own kickstart: %d\n%s", code, body)
	}
	if code, body := l.curl("192.0.2.10", "POST", base4+"/cb/"+tok+"/built"); code != 200 {
		t.Fatalf("built: %d %s", code, body)
	}
	for _, what := range []string{"failed", "nope"} {
		if code, _ := l.curl("192.0.2.10", "POST", base4+"/cb/"+tok+"/"+what); code != 404 {
			t.Errorf("%s with the old token after built: %d", what, code)
		}
	}
	if code, _ := l.curl("192.0.2.10", "GET", base4+"/ks/"+tok); code != 404 {
		t.Errorf("kickstart with the old token after built: %d", code)
	}
	out, err := l.fx.cli(t, l.bin, "host", "show", "victim4")
	if err != nil || !strings.Contains(out, `"state": "local"`) {
		t.Errorf("victim4 after built: %v\n%s", err, out)
	}
}

// A failed upload is accepted once per install and bounded; its timeline
// entry is bounded too.
func TestFailedUploadBounded(t *testing.T) {
	l := newTrustLab(t, "kshfail")
	_, script := l.curl("192.0.2.10", "GET", "http://192.0.2.1:8080/boot.ipxe")
	m := ksToken.FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no token:\n%s", script)
	}
	body := filepath.Join(t.TempDir(), "big.log")
	must(t, os.WriteFile(body, []byte(strings.Repeat("anaconda said something at length\n", 500000)), 0o644)) // 17 MB
	url := "http://192.0.2.1:8080/cb/" + m[1] + "/failed"
	if code, out := l.curl("192.0.2.10", "POST", url, "--data-binary", "@"+body); code != 200 {
		t.Fatalf("failed: %d %s", code, out)
	}
	if code, _ := l.curl("192.0.2.10", "POST", url, "--data-binary", "@"+body); code != 409 {
		t.Errorf("second failed of the same install: %d, want 409", code)
	}
	logs, _ := filepath.Glob(filepath.Join(l.fx.data, "logs", "victim4-*.log"))
	if len(logs) != 1 {
		t.Fatalf("logs: %v", logs)
	}
	if st, err := os.Stat(logs[0]); err != nil || st.Size() > 4<<20 {
		t.Errorf("kept log: %v, %d bytes", err, st.Size())
	}
	if tl := l.timeline("victim4"); len(tl) > 64<<10 {
		t.Errorf("the timeline holds %d bytes after one failure", len(tl))
	}
}

// Unknown senders cannot fill the disk through syslog, and a flood of idle
// TCP connections does not keep an installer's log line out.
func TestSyslogFloods(t *testing.T) {
	l := newTrustLab(t, "kshsyslog")
	size := func() int64 {
		var n int64
		for _, f := range []string{"kickstand.db", "kickstand.db-wal"} {
			if st, err := os.Stat(filepath.Join(l.fx.data, f)); err == nil {
				n += st.Size()
			}
		}
		return n
	}
	before := size()
	// 3 s of UDP syslog as fast as one sender goes, from an address that is
	// no host's.
	var sent int
	must(t, vmtest.InNetns(l.lab.Cli, func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("192.0.2.99")}, &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 514})
		if err != nil {
			return err
		}
		defer c.Close()
		line := []byte("<13>flood: " + strings.Repeat("x", 900))
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end) && sent < 500000; sent++ {
			c.Write(line)
		}
		return nil
	}))
	time.Sleep(time.Second)
	grew := size() - before
	t.Logf("%d syslog lines sent from an unknown address; the store grew %d bytes", sent, grew)
	if grew > 1<<20 {
		t.Errorf("an unknown sender grew the store by %d bytes", grew)
	}

	// 1,030 idle TCP connections from the attacker, then the installer's.
	var conns []net.Conn
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	must(t, vmtest.InNetns(l.lab.Cli, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.99")}, Timeout: 2 * time.Second}
		for i := 0; i < 1030; i++ {
			c, err := d.Dial("tcp", "192.0.2.1:514")
			if err != nil {
				continue // refused: the per-source cap
			}
			conns = append(conns, c)
		}
		return nil
	}))
	t.Logf("%d idle connections opened", len(conns))
	var wg sync.WaitGroup
	var ierr error
	wg.Add(1)
	must(t, vmtest.InNetns(l.lab.Cli, func() error {
		c, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.10")}, Timeout: 5 * time.Second}).Dial("tcp", "192.0.2.1:514")
		if err != nil {
			ierr = err
			wg.Done()
			return nil
		}
		go func() {
			defer wg.Done()
			defer c.Close()
			_, ierr = c.Write([]byte("<30>anaconda: installer line during the flood\n"))
			time.Sleep(time.Second)
		}()
		return nil
	}))
	wg.Wait()
	if ierr != nil {
		t.Fatalf("the installer's syslog connection: %v", ierr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(l.timeline("victim4"), "installer line during the flood") {
		if time.Now().After(deadline) {
			t.Fatalf("the installer's line did not land:\n%s", l.timeline("victim4"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Request bodies trickled a byte a second do not hold connections for
// ever: the callback's own read deadline (30 s) and the server's (60 s)
// end them.
func TestSlowBodies(t *testing.T) {
	l := newTrustLab(t, "kshslow")
	var conns []net.Conn
	must(t, vmtest.InNetns(l.lab.Cli, func() error {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("192.0.2.99")}}
		for i := 0; i < 30; i++ {
			c, err := d.Dial("tcp", "192.0.2.1:8080")
			if err != nil {
				return err
			}
			path := "/cb/AAAAAAAAAAAAAAAAAAAAAAAAAA/failed"
			if i%2 == 1 {
				path = "/api/v1/hosts/victim4/state"
			}
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: 192.0.2.1\r\nContent-Length: 100000\r\n\r\n", path)
			conns = append(conns, c)
		}
		return nil
	}))
	start := time.Now()
	var wg sync.WaitGroup
	closedAt := make([]time.Duration, len(conns))
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			buf := make([]byte, 4096)
			for time.Since(start) < 90*time.Second {
				if _, err := c.Write([]byte("x")); err != nil {
					break
				}
				c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := c.Read(buf); err != nil && !isTimeout(err) {
					break
				}
			}
			closedAt[i] = time.Since(start)
		}()
	}
	wg.Wait()
	for i, d := range closedAt {
		if d > 75*time.Second {
			t.Errorf("connection %d trickling a body was still open after %s", i, d.Round(time.Second))
		}
	}
	t.Logf("trickling connections closed after %v", closedAt)
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

func (l *trustLab) syslogUDP(from, line string) {
	l.t.Helper()
	must(l.t, vmtest.InNetns(l.lab.Cli, func() error {
		c, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP(from)}, &net.UDPAddr{IP: net.ParseIP("192.0.2.1"), Port: 514})
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte(line))
		return err
	}))
}

// udhcpc leases an address for the client side's MAC from kickstand and
// puts it on the link; it returns the address.
func (l *trustLab) udhcpc() string {
	l.t.Helper()
	dir := l.t.TempDir()
	script := filepath.Join(dir, "script")
	must(l.t, os.WriteFile(script, []byte("#!/bin/sh\ncase \"$1\" in bound|renew) ip addr add \"$ip/$mask\" dev \"$interface\"; echo \"$ip\" > "+filepath.Join(dir, "ip")+" ;; esac\nexit 0\n"), 0o755))
	if out, err := l.lab.Output(l.ctx, "cli", "udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "2", "-i", vmtest.CliVeth, "-s", script); err != nil {
		l.t.Fatalf("udhcpc: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, "ip"))
	if err != nil {
		l.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}
