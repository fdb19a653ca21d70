package hardening

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/vmtest"
)

const (
	reservedMAC6  = "52:54:00:aa:00:06"
	reservedAddr6 = "2001:db8::50"
)

const starve6Config = `server:
  http: "127.0.0.1:8080"
  data_dir: data
  templates: templates
menu:
  unknown: ignore
tftp:
  enabled: false
dhcp6:
  enabled: true
  interfaces: [%s]
  subnets:
    - prefix: 2001:db8::/64
      pool: 2001:db8::1:0-2001:db8::ffff:ffff
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
  - name: reserved6
    macs: ["` + reservedMAC6 + `"]
    ipv6: ` + reservedAddr6 + `/64
    profile: p1
    netboot: local
`

// reservedClient6 runs ISC dhclient -6 for the reserved host (DUID-LL of
// its MAC, on a macvlan of its own, so it and perfdhcp each have their
// port 546) and returns the address it bound.
func reservedClient6(t *testing.T, ctx context.Context, lab *vmtest.Lab) (string, error) {
	dir := t.TempDir()
	log := filepath.Join(dir, "script.log")
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte(fmt.Sprintf("#!/bin/sh\necho \"$reason $new_ip6_address\" >> '%s'\nexit 0\n", log)), 0o755); err != nil {
		return "", err
	}
	pidf := filepath.Join(dir, "pid")
	defer func() {
		if b, err := os.ReadFile(pidf); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				if cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); err == nil && strings.Contains(string(cmd), dir) {
					exec.Command("kill", strconv.Itoa(pid)).Run()
				}
			}
		}
	}()
	out, err := lab.Cmd(ctx, "cli", "timeout", "60", "dhclient", "-6", "-1", "-v", "-D", "LL", "-cf", "/dev/null", "-sf", script,
		"-lf", filepath.Join(dir, "leases"), "-pf", pidf, "rsv0").CombinedOutput()
	b, _ := os.ReadFile(log)
	m := regexp.MustCompile(`BOUND6 (\S+)`).FindSubmatch(b)
	if err != nil || m == nil {
		return "", fmt.Errorf("dhclient -6: %v\n%s", err, out)
	}
	return string(m[1]), nil
}

// perfdhcp6 runs perfdhcp -6 in the client namespace and returns how many
// Advertises it got, with its output.
func perfdhcp6(ctx context.Context, lab *vmtest.Lab, args ...string) (int, string) {
	argv := append([]string{"timeout", "60", "perfdhcp", "-6", "-l", vmtest.CliVeth}, args...)
	out, _ := lab.Cmd(ctx, "cli", argv...).CombinedOutput()
	m := regexp.MustCompile(`(?s)Statistics for: SOLICIT-ADVERTISE.*?received packets: (\d+)`).FindSubmatch(out)
	if m == nil {
		return 0, string(out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n, string(out)
}

// TestDHCPv6Starvation is the DHCPv6 starvation scenario, as
// TestDHCPStarvation is DHCPv4's, against the real kickstand serve with its
// default limits: Kea's perfdhcp -6 sends Solicits from 20,000 DUIDs as fast
// as it can; the global limit bounds how many are answered, one DUID cannot
// take more than its own bucket, the reserved host (ISC dhclient -6) still
// gets its address during the burst and after it, memory stays bounded, and
// the limit is logged, not once per packet.
func TestDHCPv6Starvation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), budget(150*time.Second))
	defer cancel()
	vmtest.Need(t, "dhclient", "perfdhcp")
	lab := newLab(t, ctx, "hdstarve6", vmtest.IPv6Only())
	for _, step := range [][]string{
		{"-n", lab.Cli, "link", "add", "rsv0", "link", vmtest.CliVeth, "address", reservedMAC6, "type", "macvlan", "mode", "bridge"},
		{"-n", lab.Cli, "link", "set", "rsv0", "up"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", step...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(step, " "), err, out)
		}
	}
	fx := newFixture(t, fmt.Sprintf(starve6Config, lab.Bridge), nil)
	srv := start(t, lab.Cmd(ctx, "srv", kickstandBin(t), "serve", "--config", fx.cfg), "DHCPv6 listening")
	lim := dhcpengine.DefaultLimits()
	pid := srv.Pid()

	// Before the burst; this also waits out the fresh bridge's first
	// second, when it drops multicast.
	var addr string
	var err error
	for try := 0; try < 3; try++ {
		if addr, err = reservedClient6(t, ctx, lab); err == nil {
			break
		}
	}
	if err != nil || addr != reservedAddr6 {
		t.Fatalf("reserved client before the burst: %q %v", addr, err)
	}

	// One DUID, 50 Solicits in one second: only its own bucket's worth.
	perDUID, out := perfdhcp6(ctx, lab, "-R", "1", "-r", "50", "-n", "50", "-p", "3", "-W", "500000")
	t.Logf("one DUID, 50 Solicits: %d Advertises (per-client burst %d)", perDUID, lim.PerClientBurst)
	if perDUID < 1 || perDUID > lim.PerClientBurst+4 {
		t.Errorf("one DUID got %d Advertises for 50 Solicits; want 1..%d\n%s", perDUID, lim.PerClientBurst+4, tail(out, 20))
	}

	rssBefore, err := procStatus(pid, "VmRSS")
	must(t, err)
	burst := 20000
	if stress() {
		burst = 200000
	}
	type result struct {
		addr string
		err  error
		at   time.Time
	}
	began := time.Now()
	resv := make(chan result, 1)
	go func() {
		time.Sleep(500 * time.Millisecond) // the burst is under way
		a, err := reservedClient6(t, ctx, lab)
		resv <- result{a, err, time.Now()}
	}()
	advertised, out := perfdhcp6(ctx, lab, "-R", strconv.Itoa(burst), "-r", "10000", "-n", strconv.Itoa(burst), "-p", "10", "-W", "1000000")
	elapsed := time.Since(began)
	r := <-resv
	rssAfter, err := procStatus(pid, "VmRSS")
	must(t, err)
	sent := regexp.MustCompile(`(?s)SOLICIT-ADVERTISE.*?sent packets: (\d+)`).FindStringSubmatch(out)
	t.Logf("%s Solicits from %d DUIDs in %s: %d Advertises; RSS %d -> %d kB", sent[1:], burst, elapsed.Round(time.Millisecond), advertised, rssBefore, rssAfter)
	if r.err != nil || r.addr != reservedAddr6 {
		t.Errorf("reserved client during the burst: %q %v", r.addr, r.err)
	} else {
		t.Logf("reserved client got %s %s after the burst began", r.addr, r.at.Sub(began).Round(time.Millisecond))
	}
	allowed := float64(lim.GlobalBurst) + lim.Global*elapsed.Seconds()
	if float64(advertised) > allowed*1.05 {
		t.Errorf("%d Advertises in %s; the global limit allows about %.0f", advertised, elapsed, allowed)
	}
	if advertised < 500 {
		t.Errorf("only %d Advertises: the pool served almost nobody\n%s", advertised, tail(out, 30))
	}
	if grow := rssAfter - rssBefore; grow > 64<<10 {
		t.Errorf("RSS grew by %d kB during the burst", grow)
	}
	logs := regexp.MustCompile(`DHCP rate limit.*dropped=\d+`).FindAllString(srv.Log(), -1)
	t.Logf("rate limit log lines: %d", len(logs))
	if len(logs) == 0 {
		t.Errorf("the rate limit was never logged")
	}
	if max := int(elapsed/lim.LogEvery) + 3; len(logs) > max {
		t.Errorf("%d rate-limit log lines in %s; want at most %d", len(logs), elapsed, max)
	}
	if srv.exited() || strings.Contains(srv.Log(), "panic") {
		t.Fatalf("kickstand died: %v\n%s", srv.err, tail(srv.Log(), 40))
	}
	if addr, err := reservedClient6(t, ctx, lab); err != nil || addr != reservedAddr6 {
		t.Errorf("reserved client after the burst: %q %v", addr, err)
	}
}
