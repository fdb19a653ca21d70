package hardening

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

const loopbackConfig = `server:
  http: "127.0.0.1:%[1]d"
  address_v4: 127.0.0.1
  data_dir: data
  root: root
  templates: templates
syslog:
  enabled: true
  listen: "127.0.0.1:%[2]d"
tftp:
  enabled: true
  listen: "127.0.0.1:%[3]d"
  max_transfers: %[4]d
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
  - name: h1
    macs: ["52:54:00:00:77:01"]
    ipv4: 127.0.0.5/8
    profile: p1
    netboot: install
`

// loopbackServer is `kickstand serve` on loopback with HTTP, TFTP (at most
// maxTransfers) and syslog, and a 1 MiB file "big.bin" in its root.
type loopbackServer struct {
	*proc
	fx                         *fixture
	bin                        string
	http, syslogPort, tftpPort int
}

func startLoopback(t *testing.T, ctx context.Context, maxTransfers int) *loopbackServer {
	t.Helper()
	bin := kickstandBin(t)
	s := &loopbackServer{bin: bin, http: freePort(t, "127.0.0.1"), syslogPort: freePort(t, "127.0.0.1"), tftpPort: freePort(t, "127.0.0.1")}
	s.fx = newFixture(t, fmt.Sprintf(loopbackConfig, s.http, s.syslogPort, s.tftpPort, maxTransfers), nil)
	root := filepath.Join(s.fx.dir, "root")
	must(t, os.MkdirAll(root, 0o755))
	big := make([]byte, 1<<20)
	rand.Read(big)
	must(t, os.WriteFile(filepath.Join(root, "big.bin"), big, 0o644))
	s.proc = start(t, exec.CommandContext(ctx, bin, "serve", "--config", s.fx.cfg), "syslog listening")
	return s
}

func (s *loopbackServer) url(p string) string { return fmt.Sprintf("http://127.0.0.1:%d%s", s.http, p) }

// healthy checks the server is alive and answering, and never panicked.
func (s *loopbackServer) healthy(t *testing.T) {
	t.Helper()
	if s.exited() {
		t.Fatalf("kickstand exited: %v\n%s", s.err, tail(s.Log(), 40))
	}
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(s.url("/healthz"))
	if err != nil {
		t.Fatalf("healthz: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz: %d", resp.StatusCode)
	}
	if strings.Contains(s.Log(), "panic") {
		t.Fatalf("kickstand logged a panic:\n%s", tail(s.Log(), 60))
	}
}

// TestSlowloris: connections that trickle their headers are cut by the
// header timeout, and other clients are served meanwhile.
func TestSlowloris(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), budget(90*time.Second))
	defer cancel()
	s := startLoopback(t, ctx, 16)
	pid := s.Pid()
	// One download first: the served directory stays open (bootfiles'
	// root cache) and belongs to the baseline.
	if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/big.bin", s.http)); err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	http.DefaultClient.CloseIdleConnections()
	baseFD, err := fdCount(pid)
	must(t, err)

	slow := 200
	if stress() {
		slow = 2000
	}
	const headerTimeout = 10 * time.Second // httpd.Listen's ReadHeaderTimeout
	var closed atomic.Int32
	var wg sync.WaitGroup
	begin := time.Now()
	closedAt := make([]time.Duration, slow)
	for i := 0; i < slow; i++ {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", s.http), 5*time.Second)
		if err != nil {
			t.Fatalf("slow connection %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			fmt.Fprintf(c, "GET /big.bin HTTP/1.1\r\nHost: x\r\n")
			// One header line every second, never the blank line, for
			// up to three times the server's timeout.
			for j := 0; time.Since(begin) < 3*headerTimeout; j++ {
				c.SetReadDeadline(time.Now().Add(time.Second))
				if _, err := fmt.Fprintf(c, "X-Slow-%d: a\r\n", j); err != nil {
					break
				}
				var b [512]byte
				if _, err := c.Read(b[:]); err != nil && !errors.Is(err, os.ErrDeadlineExceeded) {
					break // the server answered (408) or closed
				}
			}
			closedAt[i] = time.Since(begin)
			closed.Add(1)
		}()
	}
	// Meanwhile a normal client is served, repeatedly, at full speed.
	served := 0
	for time.Since(begin) < headerTimeout-2*time.Second {
		resp, err := (&http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}).Get(s.url("/big.bin"))
		if err != nil {
			t.Fatalf("a normal client was not served during the slowloris: %v", err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || n != 1<<20 {
			t.Fatalf("normal client: %d, %d bytes", resp.StatusCode, n)
		}
		served++
		time.Sleep(100 * time.Millisecond)
	}
	during, _ := fdCount(pid)
	wg.Wait()
	var last time.Duration
	for _, d := range closedAt {
		last = max(last, d)
	}
	t.Logf("%d slow connections held %d fds (baseline %d); all cut after at most %s; %d normal downloads meanwhile", slow, during-baseFD, baseFD, last.Round(time.Millisecond), served)
	if last >= 3*headerTimeout {
		t.Errorf("slow connections were still open after %s: no header timeout", last)
	}
	waitFDs(t, pid, baseFD, 10*time.Second)
	s.healthy(t)
}

// waitFDs waits until pid has at most base+2 file descriptors (a pooled
// store connection may come and go).
func waitFDs(t *testing.T, pid, base int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		n, err := fdCount(pid)
		must(t, err)
		if n <= base+2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("file descriptors did not return to the baseline: %d now, %d before", n, base)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMalformed sends oversized and malformed requests to HTTP, TFTP and
// syslog: each gets a clear error or is dropped, and the server stays up.
func TestMalformed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), budget(60*time.Second))
	defer cancel()
	s := startLoopback(t, ctx, 16)
	addr := fmt.Sprintf("127.0.0.1:%d", s.http)

	raw := func(req string) string {
		t.Helper()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		must(t, err)
		defer c.Close()
		c.SetDeadline(time.Now().Add(15 * time.Second))
		go io.WriteString(c, req) // the server may answer before it has read it all
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil && line == "" {
			return "(closed: " + err.Error() + ")"
		}
		return strings.TrimSpace(line)
	}
	for _, c := range []struct {
		name, req, want string
	}{
		{"100 KiB header", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 100<<10) + "\r\n\r\n", "HTTP/1.1 431"},
		{"10,000 headers", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 10000) + "\r\n", "HTTP/1.1 431"},
		{"100 KiB path", "GET /" + strings.Repeat("p", 100<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 431"},
		{"8 KiB path", "GET /" + strings.Repeat("p/", 4<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"},
		{"8 KiB kickstart token", "GET /ks/" + strings.Repeat("A", 8<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"},
		{"climbing path", "GET /distros/d1/../../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"},
		{"encoded climb", "GET /distros/d1/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"},
		{"NUL in path", "GET /big%00.bin HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 404"},
		{"binary garbage", string(randBytes(4096)) + "\r\n\r\n", "HTTP/1.1 400"},
		{"bad method", "G\x01T / HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 400"},
		{"HTTP/9", "GET / HTTP/9.9\r\nHost: x\r\n\r\n", "HTTP/1.1 505"},
		{"huge Content-Length on a callback", "POST /cb/AAAA/failed HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n", "HTTP/1.1 404"},
		{"bad query", "GET /boot.ipxe?mac=%zz&arch=-1&uuid=" + strings.Repeat("u", 4000) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 "},
	} {
		got := raw(c.req)
		if !strings.HasPrefix(got, c.want) {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		} else {
			t.Logf("%s: %s", c.name, got)
		}
	}
	s.healthy(t)

	// UDP garbage at TFTP and syslog, TCP garbage at syslog.
	// udp sends b from a fresh unconnected socket (TFTP answers from a
	// new port) and returns the first answer within wait.
	udp := func(port int, b []byte, wait time.Duration) []byte {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		must(t, err)
		defer c.Close()
		c.WriteToUDP(b, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if wait == 0 {
			return nil
		}
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, 1500)
		n, _, _ := c.ReadFromUDP(buf)
		return buf[:n]
	}
	tftpCases := [][]byte{
		{},
		{0},
		{0, 1},                             // RRQ with no name
		[]byte("\x00\x01big.bin"),          // no terminator
		[]byte("\x00\x01big.bin\x00octet"), // mode not terminated
		[]byte("\x00\x01big.bin\x00bogus\x00"),
		[]byte("\x00\x01big.bin\x00octet\x00blksize\x00-5\x00windowsize\x0099999999999\x00"),
		[]byte("\x00\x01big.bin\x00octet\x00blksize\x00"), // option without value
		append([]byte("\x00\x01"), append([]byte(strings.Repeat("a", 1400)), 0, 'o', 'c', 't', 'e', 't', 0)...),
		[]byte("\x00\x01../../etc/passwd\x00octet\x00"),
		[]byte("\x00\x02upload.bin\x00octet\x00"), // WRQ
		[]byte("\x00\x03\x00\x01data for nobody"), // stray DATA
		[]byte("\x00\x05\x00\x00stray error\x00"),
		[]byte("\x00\x09nonsense opcode"),
	}
	for _, b := range tftpCases {
		r := udp(s.tftpPort, b, 300*time.Millisecond)
		switch {
		case len(r) >= 4 && binary.BigEndian.Uint16(r) == 5:
			t.Logf("TFTP %q: error %q", b[:min(len(b), 40)], r[4:len(r)-1])
		case len(r) >= 4 && (binary.BigEndian.Uint16(r) == 3 || binary.BigEndian.Uint16(r) == 6):
			t.Logf("TFTP %q: served (opcode %d)", b[:min(len(b), 40)], binary.BigEndian.Uint16(r))
		case len(r) > 0:
			t.Errorf("TFTP %q: answered with %q", b[:min(len(b), 40)], r)
		default:
			t.Logf("TFTP %q: no answer", b[:min(len(b), 40)])
		}
	}
	for i := 0; i < 500; i++ {
		udp(s.tftpPort, randBytes(1+i*7%1400), 0)
	}
	for i := 0; i < 300; i++ {
		udp(s.syslogPort, randBytes(1+i*13%9000), 0)
	}
	udp(s.syslogPort, []byte("<999999999999>"+strings.Repeat("x", 60000)), 0)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", s.syslogPort))
	must(t, err)
	c.Write(randBytes(1 << 20))
	c.Write([]byte("99999999999999 <13>octet count lies\n"))
	c.Close()
	s.healthy(t)

	// After all that, a real TFTP client still gets the file whole.
	vmtest.Need(t, "curl")
	out := filepath.Join(t.TempDir(), "big.bin")
	if b, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "20", "-o", out, fmt.Sprintf("tftp://127.0.0.1:%d/big.bin", s.tftpPort)).CombinedOutput(); err != nil {
		t.Fatalf("curl tftp after the garbage: %v\n%s", err, b)
	}
	if st, err := os.Stat(out); err != nil || st.Size() != 1<<20 {
		t.Fatalf("TFTP download after the garbage: %v %v", st, err)
	}
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestTFTPFlood sends many read requests and never acknowledges: at most
// max_transfers run at once, the rest are refused as busy at once, the
// abandoned transfers time out, and the file descriptors return to the
// baseline. A real client is served once the flood has timed out.
func TestTFTPFlood(t *testing.T) {
	vmtest.Need(t, "tftp")
	ctx, cancel := context.WithTimeout(context.Background(), budget(110*time.Second))
	defer cancel()
	const maxTransfers = 32
	s := startLoopback(t, ctx, maxTransfers)
	pid := s.Pid()
	baseFD, err := fdCount(pid)
	must(t, err)

	requests := 500
	if stress() {
		requests = 5000
	}
	// Each request from its own socket, as a new client would; the
	// sockets stay open so the server's retransmissions arrive somewhere,
	// and they are read to classify the first answer.
	type result struct{ data, busy, other int }
	var res result
	var mu sync.Mutex
	// Clients that got DATA keep their sockets open and silent, so their
	// transfers end by the server's idle timeout, not by an ICMP error.
	var silent []*net.UDPConn
	defer func() {
		for _, c := range silent {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 256) // our own fd budget
	for i := 0; i < requests; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				return
			}
			keep := false
			defer func() {
				if !keep {
					c.Close()
				}
			}()
			rrq := []byte("\x00\x01big.bin\x00octet\x00")
			c.WriteToUDP(rrq, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: s.tftpPort})
			c.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 1024)
			n, _, err := c.ReadFromUDP(buf)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil || n < 4:
				res.other++
			case binary.BigEndian.Uint16(buf) == 3:
				res.data++
				keep = true
				silent = append(silent, c)
			case binary.BigEndian.Uint16(buf) == 5 && strings.Contains(string(buf[4:n]), "busy"):
				res.busy++
			default:
				res.other++
			}
		}()
	}
	wg.Wait()
	peak, _ := fdCount(pid)
	t.Logf("%d RRQs never acknowledged: %d got DATA, %d busy, %d other; fds %d -> %d", requests, res.data, res.busy, res.other, baseFD, peak)
	if res.data > maxTransfers {
		t.Errorf("%d transfers started, max_transfers is %d", res.data, maxTransfers)
	}
	if res.data == 0 || res.busy == 0 {
		t.Errorf("want both started transfers and busy refusals: %+v", res)
	}
	// A transfer holds its socket and its open file.
	if peak > baseFD+2*maxTransfers+4 {
		t.Errorf("fds went from %d to %d with at most %d transfers", baseFD, peak, maxTransfers)
	}
	// The idle timeout (30 s) ends the abandoned transfers.
	began := time.Now()
	waitFDs(t, pid, baseFD, 60*time.Second)
	t.Logf("abandoned transfers ended %s after the flood", time.Since(began).Round(time.Second))
	s.healthy(t)
	dir := t.TempDir()
	get := exec.CommandContext(ctx, "tftp", "127.0.0.1", fmt.Sprint(s.tftpPort), "-m", "binary", "-c", "get", "big.bin")
	get.Dir = dir
	t0 := time.Now()
	defer func() { t.Logf("tftp-hpa download after the flood: %s", time.Since(t0).Round(time.Millisecond)) }()
	if out, err := get.CombinedOutput(); err != nil {
		t.Fatalf("tftp-hpa after the flood: %v\n%s", err, out)
	}
	if st, err := os.Stat(filepath.Join(dir, "big.bin")); err != nil || st.Size() != 1<<20 {
		t.Fatalf("tftp-hpa after the flood got %v %v", st, err)
	}
	if n := strings.Count(s.Log(), "tftp busy"); n > 0 {
		t.Logf("note: %d 'tftp busy' log lines for %d refusals (one per 10 s, with the count)", n, res.busy)
	}
}
