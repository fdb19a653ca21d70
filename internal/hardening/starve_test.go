package hardening

import (
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/vmtest"
)

const (
	reservedMAC  = "52:54:00:aa:00:01"
	reservedAddr = "198.18.0.50"
)

const starveConfig = `server:
  http: "198.18.0.1:8080"
  data_dir: data
  templates: templates
menu:
  unknown: ignore
dhcp:
  enabled: true
  mode: server
  interfaces: [%s]
  subnets:
    - subnet: 198.18.0.0/15
      pool: 198.18.1.0-198.19.255.254
      lease_time: 1h
distros:
  - name: d1
    release: rhel9
    arch: x86_64
    tree: tree
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p1
    distro: d1
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
hosts:
  - name: reserved1
    macs: ["` + reservedMAC + `"]
    ipv4: ` + reservedAddr + `/15
    profile: p1
    netboot: local
`

// dhcpLab is kickstand serving DHCP on a lab bridge with 198.18.0.1/15;
// the client namespace has 198.18.0.2/15 on its veth (the flooder poses
// as a relay from there) and a macvlan with the reserved host's MAC for a
// real client.
type dhcpLab struct {
	lab *vmtest.Lab
	fx  *fixture
	srv *proc
	bin string
}

func startDHCPLab(t *testing.T, ctx context.Context, name string) *dhcpLab {
	t.Helper()
	vmtest.Need(t, "udhcpc", "curl")
	lab := newLab(t, ctx, name)
	for _, step := range [][]string{
		{"-n", lab.Srv, "addr", "add", "198.18.0.1/15", "dev", lab.Bridge},
		{"-n", lab.Cli, "addr", "add", "198.18.0.2/15", "dev", vmtest.CliVeth},
		{"-n", lab.Cli, "link", "add", "rsv0", "link", vmtest.CliVeth, "address", reservedMAC, "type", "macvlan", "mode", "bridge"},
		{"-n", lab.Cli, "link", "set", "rsv0", "up"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", step...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(step, " "), err, out)
		}
	}
	d := &dhcpLab{lab: lab, bin: kickstandBin(t)}
	d.fx = newFixture(t, fmt.Sprintf(starveConfig, lab.Bridge), nil)
	d.srv = start(t, lab.Cmd(ctx, "srv", d.bin, "serve", "--config", d.fx.cfg), "DHCPv4 listening")
	return d
}

// reservedClient runs busybox udhcpc for the reserved MAC and returns the
// address it was given.
func (d *dhcpLab) reservedClient(ctx context.Context) (string, error) {
	out, err := d.lab.Cmd(ctx, "cli", "udhcpc", "-f", "-q", "-n", "-t", "20", "-T", "1", "-i", "rsv0", "-s", "/bin/true").CombinedOutput()
	m := regexp.MustCompile(`lease of (\S+) obtained`).FindSubmatch(out)
	if err != nil || m == nil {
		return "", fmt.Errorf("udhcpc: %v\n%s", err, out)
	}
	return string(m[1]), nil
}

// relay is a fake relay agent in the client namespace: it sends DHCP
// requests with giaddr 198.18.0.2 to kickstand and counts the offers.
type relay struct {
	conn   *net.UDPConn
	offers atomic.Int64
	done   chan struct{}
}

func newRelay(t *testing.T, lab *vmtest.Lab) *relay {
	t.Helper()
	pc, err := lab.ListenPacket("cli", "udp4", "198.18.0.2:67")
	must(t, err)
	r := &relay{conn: pc.(*net.UDPConn), done: make(chan struct{})}
	r.conn.SetWriteBuffer(4 << 20)
	go func() {
		defer close(r.done)
		buf := make([]byte, 1500)
		for {
			n, _, err := r.conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if p, err := dhcpv4.FromBytes(buf[:n]); err == nil && p.MessageType() == dhcpv4.MessageTypeOffer {
				r.offers.Add(1)
			}
		}
	}()
	t.Cleanup(func() { r.conn.Close(); <-r.done })
	return r
}

var server67 = &net.UDPAddr{IP: net.IPv4(198, 18, 0, 1), Port: 67}

func (r *relay) discover(t *testing.T, mac net.HardwareAddr) {
	p, err := dhcpv4.NewDiscovery(mac, dhcpv4.WithGatewayIP(net.IPv4(198, 18, 0, 2)), dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")))
	if err != nil {
		t.Fatal(err)
	}
	r.conn.WriteToUDP(p.ToBytes(), server67)
}

func randomMAC() net.HardwareAddr {
	m := make(net.HardwareAddr, 6)
	rand.Read(m)
	m[0] = m[0]&0xfc | 0x02 // unicast, locally administered
	return m
}

// TestDHCPStarvation is issue 9's starvation scenario: 20,000 random MACs
// in a burst, through a relay. The rate limits bound how many of them the
// dynamic pool serves, one MAC cannot take more than its own bucket, the
// reserved host still gets its address during the burst and after it,
// kickstand's memory stays bounded, and the limit is logged, not once per
// packet. Garbage on ports 67 and 4011 is survived too.
func TestDHCPStarvation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), budget(100*time.Second))
	defer cancel()
	d := startDHCPLab(t, ctx, "hdstarve")
	lim := dhcpengine.DefaultLimits()
	pid := d.srv.Pid()

	if addr, err := d.reservedClient(ctx); err != nil || addr != reservedAddr {
		t.Fatalf("reserved client before the burst: %q %v", addr, err)
	}
	rel := newRelay(t, d.lab)

	// One MAC, 50 DISCOVERs at once: only its own bucket's worth is served.
	one := randomMAC()
	for i := 0; i < 50; i++ {
		rel.discover(t, one)
	}
	time.Sleep(time.Second)
	perMAC := rel.offers.Load()
	t.Logf("one MAC, 50 DISCOVERs at once: %d offers (per-MAC burst %d)", perMAC, lim.PerClientBurst)
	if perMAC < 1 || perMAC > int64(lim.PerClientBurst)+2 {
		t.Errorf("one MAC got %d offers for 50 DISCOVERs; want 1..%d", perMAC, lim.PerClientBurst+2)
	}

	rssBefore, err := procStatus(pid, "VmRSS")
	must(t, err)
	drops0 := udpRcvbufErrors(ctx, d.lab)
	burst := 20000
	if stress() {
		burst = 200000
	}
	// The reserved client starts with the burst.
	type result struct {
		addr string
		err  error
		at   time.Time
	}
	resv := make(chan result, 1)
	go func() {
		a, err := d.reservedClient(ctx)
		resv <- result{a, err, time.Now()}
	}()
	rel.offers.Store(0)
	began := time.Now()
	for i := 0; i < burst && time.Since(began) < 30*time.Second; i++ {
		rel.discover(t, randomMAC())
		if i%2000 == 1999 {
			time.Sleep(time.Millisecond) // let our socket buffer drain
		}
	}
	sent := time.Since(began)
	time.Sleep(2 * time.Second) // offers still being committed
	elapsed := time.Since(began)
	offers := rel.offers.Load()
	rssAfter, err := procStatus(pid, "VmRSS")
	must(t, err)
	r := <-resv
	t.Logf("UDP packets the server namespace's kernel dropped for a full socket buffer: %d", udpRcvbufErrors(ctx, d.lab)-drops0)
	t.Logf("%d random MACs sent in %s: %d offers in %s; RSS %d -> %d kB", burst, sent.Round(time.Millisecond), offers, elapsed.Round(time.Millisecond), rssBefore, rssAfter)
	if r.err != nil || r.addr != reservedAddr {
		t.Errorf("reserved client during the burst: %q %v", r.addr, r.err)
	} else {
		t.Logf("reserved client got %s %s after the burst began (sending took %s)", r.addr, r.at.Sub(began).Round(time.Millisecond), sent.Round(time.Millisecond))
	}
	allowed := float64(lim.GlobalBurst) + lim.Global*elapsed.Seconds()
	if float64(offers) > allowed*1.05 {
		t.Errorf("%d offers in %s; the global limit allows about %.0f", offers, elapsed, allowed)
	}
	if offers < 500 {
		t.Errorf("only %d offers: the pool served almost nobody", offers)
	}
	if grow := rssAfter - rssBefore; grow > 64<<10 {
		t.Errorf("RSS grew by %d kB during the burst", grow)
	}
	logs := regexp.MustCompile(`DHCP rate limit.*dropped=(\d+)`).FindAllStringSubmatch(d.srv.Log(), -1)
	dropped := 0
	for _, m := range logs {
		n, _ := strconv.Atoi(m[1])
		dropped += n
	}
	t.Logf("rate limit log lines: %d, reporting %d dropped packets", len(logs), dropped)
	if len(logs) == 0 {
		t.Errorf("the rate limit was never logged")
	}
	if max := int(elapsed/lim.LogEvery) + 2; len(logs) > max {
		t.Errorf("%d rate-limit log lines in %s; want at most %d", len(logs), elapsed, max)
	}

	// Garbage on 67 and 4011: random bytes, and packets with a valid
	// header whose options lie about their lengths.
	garbage := [][]byte{}
	for i := 0; i < 300; i++ {
		garbage = append(garbage, randBytes(1+i*5%1400))
	}
	base, _ := dhcpv4.NewDiscovery(randomMAC(), dhcpv4.WithGatewayIP(net.IPv4(198, 18, 0, 2)))
	hdr := base.ToBytes()[:240] // fixed header and magic cookie
	for _, opts := range [][]byte{
		{53, 1, 1, 82, 255, 1, 2, 3},                             // option 82 longer than the packet
		append([]byte{53, 1, 1, 125, 255}, make([]byte, 255)...), // overlong 125, no end
		{53, 0, 255},      // message type with no value
		{53, 1, 99, 255},  // unknown message type
		{61, 200, 1, 255}, // client id past the end
		append(append([]byte{53, 1, 1}, repeatOpt(82, 2, 120)...), 255),
		{52, 1, 3, 53, 1, 1, 255}, // option overload without file/sname options
	} {
		garbage = append(garbage, append(append([]byte{}, hdr...), opts...))
	}
	for _, port := range []int{67, 4011} {
		for _, g := range garbage {
			rel.conn.WriteToUDP(g, &net.UDPAddr{IP: server67.IP, Port: port})
		}
	}
	time.Sleep(500 * time.Millisecond)
	if d.srv.exited() || strings.Contains(d.srv.Log(), "panic") {
		t.Fatalf("kickstand died on garbage: %v\n%s", d.srv.err, tail(d.srv.Log(), 40))
	}
	if addr, err := d.reservedClient(ctx); err != nil || addr != reservedAddr {
		t.Errorf("reserved client after the burst and the garbage: %q %v", addr, err)
	}
	if out, err := d.lab.Cmd(ctx, "cli", "curl", "-sS", "--max-time", "5", "http://198.18.0.1:8080/healthz").CombinedOutput(); err != nil || !strings.Contains(string(out), "ok") {
		t.Errorf("healthz after the burst: %v %s", err, out)
	}
	if n := strings.Count(d.srv.Log(), `msg="no offer"`); n > 0 {
		t.Logf("note: %d 'no offer' log lines", n)
	}
	os.WriteFile(filepath.Join(t.TempDir(), "kickstand.log"), []byte(d.srv.Log()), 0o644)
}

// udpRcvbufErrors reads the UDP RcvbufErrors counter of the server
// namespace: packets the kernel dropped because kickstand's socket buffer
// was full, before kickstand could see them.
func udpRcvbufErrors(ctx context.Context, lab *vmtest.Lab) int {
	out, err := lab.Output(ctx, "srv", "cat", "/proc/net/snmp")
	if err != nil {
		return 0
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == "RcvbufErrors" && i < len(f) {
				v, _ := strconv.Atoi(f[i])
				return v
			}
		}
	}
	return 0
}

// repeatOpt is n copies of a code/length/value option.
func repeatOpt(code, length byte, n int) []byte {
	var b []byte
	for i := 0; i < n; i++ {
		b = append(b, code, length)
		b = append(b, make([]byte, length)...)
	}
	return b
}
