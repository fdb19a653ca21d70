package storm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// HostAddr is machine i's reserved address: 198.18.4.0 + i, inside the
// storm's pool (198.18.1.0-198.19.255.254 of 198.18.0.0/15, the
// benchmarking range), so the reservations are exactly what the pool must
// never hand to anyone else. It has room for 130,000 hosts.
func HostAddr(i int) netip.Addr {
	n := uint32(198)<<24 | uint32(18)<<16 | uint32(4)<<8 + uint32(i)
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// addSources puts the machines' reserved addresses on the loopback of the
// simulator's namespace, so that each machine's TFTP and HTTP requests come
// from its own address, the one kickstand leased it and identifies it by.
// The servers route 198.18.0.0/15 back over their link (RouteBack).
func addSources(ctx context.Context, first, n int) error {
	return ipBatch(ctx, "add", first, n)
}

func delSources(first, n int) { ipBatch(context.Background(), "del", first, n) }

func ipBatch(ctx context.Context, op string, first, n int) error {
	var b strings.Builder
	for i := first; i < first+n; i++ {
		fmt.Fprintf(&b, "address %s %s/32 dev lo\n", op, HostAddr(i))
	}
	cmd := exec.CommandContext(ctx, "ip", "-force", "-batch", "-")
	cmd.Stdin = strings.NewReader(b.String())
	if out, err := cmd.CombinedOutput(); err != nil && op == "add" && !strings.Contains(string(out), "File exists") {
		return fmt.Errorf("adding the machines' addresses: ip -batch: %v: %s", err, out)
	}
	return nil
}

// RouteBack is the route a server's namespace needs to answer the
// machines' own addresses over its link to the simulator at local.
func RouteBack(local netip.Addr) []string {
	return []string{"route", "replace", "198.18.0.0/15", "via", local.String()}
}

// ServerConfig is what differs between the kickstand servers of one storm.
type ServerConfig struct {
	Address   netip.Addr // the server's address on its link
	Interface string     // the link's interface, served by DHCP
	DataDir   string
	Store     string // a postgres:// URL; empty for SQLite in DataDir
	Templates string
	Tree      string // the distro tree (MakeTree)
	HostsDir  string // server.hosts_dir, when the hosts are in files there (WriteHosts)
}

// WriteInventory writes a kickstand config for one server of the storm:
// DHCP on the link with the 198.18.0.0/15 pool, TFTP, HTTP on port 8080,
// one distro and profile, and n hosts in install state, host i with MAC(i)
// and HostAddr(i). Every server of a storm gets the same hosts.
func WriteInventory(w io.Writer, n int, s ServerConfig) error {
	if n > 130000 {
		return fmt.Errorf("storm inventory: %d hosts do not fit in 198.18.4.0-198.19.255.254", n)
	}
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, `# kickstand bench storm: %d hosts in install state
server:
  http: "%s:8080"
  address_v4: %s
  data_dir: %s
  templates: %s
`, n, s.Address, s.Address, s.DataDir, s.Templates)
	if s.Store != "" {
		fmt.Fprintf(b, "  store: %q\n", s.Store)
	}
	if s.HostsDir != "" {
		fmt.Fprintf(b, "  hosts_dir: %q\n", s.HostsDir)
	}
	fmt.Fprintf(b, `menu:
  unknown: ignore
dhcp:
  # Off without an interface: DHCP never serves every interface.
  enabled: %t
  mode: server
  workers: 4
  interfaces: [%s]
  subnets:
    - subnet: 198.18.0.0/15
      pool: 198.18.1.0-198.19.255.254
      lease_time: 1h
tftp:
  enabled: true
distros:
  - name: storm
    release: rhel9
    arch: x86_64
    tree: %s
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: storm
    distro: storm
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
    kernel_args: console=ttyS0 inst.text
hosts:
`, s.Interface != "", s.Interface, s.Tree)
	if err := WriteHosts(b, 0, n); err != nil {
		return err
	}
	return b.Flush()
}

// WriteHosts writes the items of a hosts: list, machines from to to-1 (a
// file of a hosts directory is "hosts:" and these).
func WriteHosts(w io.Writer, from, to int) error {
	b := bufio.NewWriter(w)
	for i := from; i < to; i++ {
		fmt.Fprintf(b, "  - name: storm-%05d\n    macs: [\"%s\"]\n    ipv4: %s/15\n    profile: storm\n    netboot: install\n", i, MAC(i), HostAddr(i))
	}
	return b.Flush()
}

// MakeTree writes the storm's distro tree into dir: vmlinuz and initrd.img
// of the given sizes, filled with pseudo-random bytes (no file system or
// transport gets to shortcut zeros).
func MakeTree(dir string, kernel, initrd int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	block := make([]byte, 1<<20)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range block {
		block[i] = byte(rng.Uint32())
	}
	for name, size := range map[string]int64{"vmlinuz": kernel, "initrd.img": initrd} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Size() == size {
			continue
		}
		f, err := os.Create(p)
		if err != nil {
			return err
		}
		for left := size; left > 0; left -= int64(len(block)) {
			if _, err := f.Write(block[:min(left, int64(len(block)))]); err != nil {
				f.Close()
				return fmt.Errorf("make tree %s: %w", p, err)
			}
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	return nil
}

// Sink is the far end of MeasureLink: it writes to every connection until
// the peer closes it, ctx ends, or maxFor has passed (the sink is bounded
// even if its peer never closes).
func Sink(ctx context.Context, ln net.Listener, maxFor time.Duration) error {
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	buf := make([]byte, 256<<10)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			c.SetWriteDeadline(time.Now().Add(maxFor))
			for ctx.Err() == nil {
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

// MeasureLink is a quick bulk transfer from a Sink at addr: streams TCP
// connections read for d; it returns the bytes per second received, the
// link's capacity against which a storm's throughput is compared.
func MeasureLink(ctx context.Context, local netip.Addr, addr string, streams int, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d+10*time.Second)
	defer cancel()
	dialer := net.Dialer{Timeout: 5 * time.Second}
	if local.IsValid() {
		dialer.LocalAddr = net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	var mu sync.Mutex
	var total int64
	var first error
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < streams; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dialer.DialContext(ctx, "tcp", addr)
			if err != nil {
				mu.Lock()
				first = errors.Join(first, err)
				mu.Unlock()
				return
			}
			defer c.Close()
			c.SetReadDeadline(start.Add(d))
			n, _ := io.Copy(io.Discard, c)
			mu.Lock()
			total += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	if total == 0 {
		return 0, fmt.Errorf("measure link %s: nothing received: %w", addr, first)
	}
	return float64(total) / el.Seconds(), nil
}
