package hardening

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// discoveryServer is `kickstand serve` on loopback with menu.unknown:
// discover, a cap of 100 discovered machines, and host h1 (static
// 127.0.0.5) in install.
func discoveryServer(t *testing.T, ctx context.Context) *loopbackServer {
	t.Helper()
	bin := kickstandBin(t)
	s := &loopbackServer{bin: bin, http: freePort(t, "127.0.0.1")}
	s.fx = newFixture(t, fmt.Sprintf(`server:
  http: "127.0.0.1:%d"
  address_v4: 127.0.0.1
  data_dir: data
  templates: templates
menu:
  unknown: discover
discovery:
  poll: 5s
  max_machines: 100
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
`, s.http), nil)
	s.proc = start(t, exec.CommandContext(ctx, bin, "serve", "--config", s.fx.cfg), "http listening")
	return s
}

// clientFrom is an HTTP client whose connections come from a loopback
// address of its own, as one machine's would.
func clientFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 4}}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, string(b)
}

func (s *loopbackServer) discovered(t *testing.T) []store.Discovered {
	t.Helper()
	out, err := exec.Command(s.bin, "discovered", "list", "-o", "json", "--config", s.fx.cfg).Output()
	if err != nil {
		t.Fatalf("discovered list: %v", err)
	}
	var ds []store.Discovered
	if err := json.Unmarshal(out, &ds); err != nil {
		t.Fatalf("discovered list: %v\n%s", err, out)
	}
	return ds
}

func (s *loopbackServer) hostNames(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(s.bin, "host", "list", "-o", "json", "--config", s.fx.cfg).Output()
	if err != nil {
		t.Fatalf("host list: %v", err)
	}
	var hs []struct{ Name string }
	json.Unmarshal(out, &hs)
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	return names
}

// TestDiscoveryBadInput: oversize and malformed reports get a 400 naming
// the field, none is stored, and no report creates a host.
func TestDiscoveryBadInput(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := discoveryServer(t, ctx)
	good := "mac=52:54:00:aa:bb:01&uuid=8a9b0c1d-2e3f-4051-8697-a8b9cadbecfd&manufacturer=QEMU&product=Standard+PC&serial=S1&asset=A1&chip=e1000&buildarch=i386&platform=pcbios&memsize="
	for i, c2 := range []struct{ name, query, want string }{
		{"oversize field", "mac=52:54:00:aa:bb:02&serial=" + strings.Repeat("x", 200), "field serial is 200 bytes"},
		{"oversize query", "mac=52:54:00:aa:bb:03&serial=" + strings.Repeat("%41", 800), "query is"},
		{"no mac", "serial=S", "field mac"},
		{"bad mac", "mac=52:54:00:aa:bb", "field mac"},
		{"unknown field", "mac=52:54:00:aa:bb:04&colour=red", `unknown field "colour"`},
		{"repeated field", "mac=52:54:00:aa:bb:05&serial=a&serial=b", "field serial given 2 times"},
		{"control character", "mac=52:54:00:aa:bb:06&product=a%01b", "field product has unprintable characters"},
		{"invalid utf-8", "mac=52:54:00:aa:bb:07&product=%ff%fe", "field product has unprintable characters"},
		{"bad uuid", "mac=52:54:00:aa:bb:08&uuid=not-a-uuid", "field uuid"},
		{"bad memsize", "mac=52:54:00:aa:bb:09&memsize=lots", "field memsize"},
		{"bad escape", "mac=52:54:00:aa:bb:0a&serial=%zz", "bad discovery report"},
	} {
		// One address each: the per-address limit (burst 10) is not
		// what this test is about.
		code, body := get(t, clientFrom(fmt.Sprintf("127.0.2.%d", 10+i)), s.url("/discover?"+c2.query))
		if code != http.StatusBadRequest || !strings.Contains(body, c2.want) {
			t.Errorf("%s: %d %q, want 400 with %q", c2.name, code, body, c2.want)
		}
	}
	code, body := get(t, clientFrom("127.0.2.200"), s.url("/discover?"+good))
	if code != http.StatusOK || !strings.HasPrefix(body, "#!ipxe") || !strings.Contains(body, "sleep") {
		t.Fatalf("a good report: %d %q", code, body)
	}
	ds := s.discovered(t)
	if len(ds) != 1 || ds[0].MAC != "52:54:00:aa:bb:01" || ds[0].Proof != "claimed" || ds[0].Serial != "S1" || ds[0].Host != "" {
		t.Fatalf("discovered after bad input: %+v", ds)
	}
	if hs := s.hostNames(t); len(hs) != 1 || hs[0] != "h1" {
		t.Fatalf("hosts after reports: %v", hs)
	}
	s.healthy(t)
}

// TestDiscoveryFlood: 10,000 invented MACs report from 50 addresses. The
// per-address limit answers most with 429, the store keeps at most
// discovery.max_machines (100), and h1, a reserved host, is answered its
// install script throughout.
func TestDiscoveryFlood(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s := discoveryServer(t, ctx)

	stop := make(chan struct{})
	var reserved, reservedBad atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // h1 keeps booting while the flood runs
		defer wg.Done()
		c := clientFrom("127.0.0.5")
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			resp, err := c.Get(s.url("/boot.ipxe"))
			if err != nil {
				reservedBad.Add(1)
				continue
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "kickstand: installing h1") {
				reservedBad.Add(1)
			}
			reserved.Add(1)
		}
	}()

	const total, sources, workers = 10000, 50, 16
	var next, ok, limited, other atomic.Int64
	deadline := time.Now().Add(60 * time.Second)
	var fw sync.WaitGroup
	for w := 0; w < workers; w++ {
		fw.Add(1)
		go func() {
			defer fw.Done()
			clients := map[int]*http.Client{}
			for {
				i := next.Add(1) - 1
				if i >= total || time.Now().After(deadline) {
					return
				}
				src := int(i % sources)
				c := clients[src]
				if c == nil {
					c = clientFrom(fmt.Sprintf("127.0.1.%d", 10+src))
					clients[src] = c
				}
				q := url.Values{"mac": {fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&0xff, i>>8&0xff, i&0xff)}, "serial": {fmt.Sprint("FAKE-", i)}}
				resp, err := c.Get(s.url("/discover?" + q.Encode()))
				if err != nil {
					other.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					ok.Add(1)
				case 429:
					limited.Add(1)
				default:
					other.Add(1)
				}
			}
		}()
	}
	fw.Wait()
	close(stop)
	wg.Wait()
	sent := ok.Load() + limited.Load() + other.Load()
	t.Logf("flood: %d sent, %d answered, %d rate limited, %d other; reserved host: %d boots, %d bad", sent, ok.Load(), limited.Load(), other.Load(), reserved.Load(), reservedBad.Load())
	if sent < total {
		t.Errorf("only %d of %d reports were sent in the time allowed", sent, total)
	}
	if limited.Load() == 0 || other.Load() != 0 {
		t.Errorf("want 429s for the flood and nothing but 200/429: %d limited, %d other", limited.Load(), other.Load())
	}
	ds := s.discovered(t)
	if len(ds) == 0 || len(ds) > 100 {
		t.Errorf("%d discovered machines kept, want 1..100 (the cap)", len(ds))
	}
	if reserved.Load() < 5 || reservedBad.Load() != 0 {
		t.Errorf("the reserved host: %d boots, %d failed", reserved.Load(), reservedBad.Load())
	}
	if hs := s.hostNames(t); len(hs) != 1 {
		t.Errorf("the flood created hosts: %v", hs)
	}
	if !strings.Contains(s.Log(), "max_machines reached") {
		t.Errorf("the cap was never reached (raise the flood)")
	}
	s.healthy(t)
}
