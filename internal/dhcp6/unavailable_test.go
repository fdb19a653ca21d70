package dhcp6

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestStoreDownDhclient6 is the store-down mode with real clients: ISC
// dhclient -6 holds a lease and renews it every few seconds; while the
// store is down its renewals are still answered, for the lifetime the
// lease has left, new clients (perfdhcp -6, fresh DUIDs) get nothing, and
// the outage is logged once when it starts and once when it ends. Once
// the store is back, new clients are served again.
func TestStoreDownDhclient6(t *testing.T) {
	lab, ctx := enginetest.LabFor(t, "ksd6-down", vmtest.IPv6Only(), 3*time.Minute, "dhclient", "perfdhcp")
	st := &enginetest.Outage{Fake: storetest.NewFake()}
	var logs enginetest.SyncBuffer
	h := enginetest.NewHarness(t, st, nil, New, func(st store.Store) (*inventory.Config, dhcpengine.Booter) {
		cfg, b := setup(t, st, lab.Bridge)
		// T1 at 3 s: dhclient renews while the test watches.
		cfg.DHCP6.Subnets[0].PreferredLifetime = inventory.Duration(6 * time.Second)
		cfg.DHCP6.Subnets[0].ValidLifetime = inventory.Duration(20 * time.Second)
		cfg.DHCP6.Subnets[0].Pool = "2001:db8::1:0-2001:db8::1:ffff"
		return cfg, b
	}, func(o *dhcpengine.Options) { o.Log = slog.New(slog.NewTextHandler(&logs, nil)) })
	s := h.S
	enginetest.ServeInLab(t, lab, s)
	for _, step := range [][]string{
		{"cli", "ip", "link", "set", vmtest.CliVeth, "down"},
		{"cli", "ip", "link", "set", vmtest.CliVeth, "address", "52:54:00:00:00:10"},
		{"cli", "ip", "link", "set", vmtest.CliVeth, "up"},
		{"srv", "ip", "neigh", "flush", "dev", lab.Bridge},
	} {
		if err := lab.Run(ctx, step[0], step[1:]...); err != nil {
			t.Fatal(err)
		}
	}
	waitAnswered(t, lab)

	dir := t.TempDir()
	script := filepath.Join(dir, "script.log")
	writeScript(t, filepath.Join(dir, "script"), fmt.Sprintf("echo \"$reason ip6=$new_ip6_address life=$new_preferred_life/$new_max_life\" >> '%s'\nexit 0\n", script))
	pidf := filepath.Join(dir, "pid")
	t.Cleanup(func() { stopPidFile(pidf) })
	out, err := lab.Cmd(ctx, "cli", "dhclient", "-6", "-1", "-v", "-D", "LL", "-cf", "/dev/null", "-sf", filepath.Join(dir, "script"),
		"-lf", filepath.Join(dir, "leases"), "-pf", pidf, vmtest.CliVeth).CombinedOutput()
	if err != nil {
		t.Fatalf("dhclient -6: %v\n%s", err, out)
	}
	lines := func(reason string) int {
		b, _ := os.ReadFile(script)
		return strings.Count(string(b), reason+" ip6=2001:db8::10 ")
	}
	if lines("BOUND6") != 1 {
		b, _ := os.ReadFile(script)
		t.Fatalf("dhclient did not bind 2001:db8::10:\n%s", b)
	}
	perf := func(n int) (replies int) {
		t.Helper()
		out, _ := lab.Cmd(ctx, "cli", "timeout", "30", "perfdhcp", "-6", "-l", vmtest.CliVeth, "-r", "50", "-R", strconv.Itoa(n),
			"-n", strconv.Itoa(n), "-p", "5", "-W", "1000000").CombinedOutput()
		return perfdhcpStats(string(out))["REQUEST-REPLY"][1]
	}

	st.Down.Store(true)
	renewed := lines("RENEW6")
	waitFor := func(what string, d time.Duration, cond func() bool) {
		t.Helper()
		for end := time.Now().Add(d); !cond(); time.Sleep(100 * time.Millisecond) {
			if time.Now().After(end) {
				b, _ := os.ReadFile(script)
				t.Fatalf("no %s in %s (stats %+v)\nscript:\n%s\nlog:\n%s", what, d, s.Stats(), b, logs.String())
			}
		}
	}
	waitFor("renewal while the store is down", 15*time.Second, func() bool { return lines("RENEW6") > renewed })
	// Another renewal, later: still answered, within the valid lifetime
	// granted before the outage.
	renewed = lines("RENEW6")
	waitFor("a second renewal while down", 15*time.Second, func() bool { return lines("RENEW6") > renewed })
	// Renewals while down were granted no more than what was left of the
	// 20 s valid lifetime.
	b, _ := os.ReadFile(script)
	renewals := regexp.MustCompile(`RENEW6 ip6=2001:db8::10 life=(\d+)/(\d+)`).FindAllStringSubmatch(string(b), -1)
	for _, m := range renewals[len(renewals)-2:] {
		if v, _ := strconv.Atoi(m[2]); v <= 0 || v >= 20 {
			t.Errorf("renewal while down granted a valid lifetime of %d s, want what was left of 20 s", v)
		}
	}
	// dhclient holds port 546, where perfdhcp must get its answers.
	stopPidFile(pidf)
	if got := perf(20); got != 0 {
		t.Errorf("%d new clients got a Reply while the store was down", got)
	}
	stats := s.Stats()
	if !stats.StoreDown || stats.FromMemory < 2 || stats.Refused < 20 {
		t.Errorf("stats while down: %+v", stats)
	}

	st.Down.Store(false)
	waitFor("the store's return noticed", 5*time.Second, func() bool { return !s.Stats().StoreDown })
	if got := perf(20); got < 15 {
		t.Errorf("only %d of 20 new clients served after the outage (stats %+v)\n%s", got, s.Stats(), logs.String())
	}
	if l, err := st.Lease(ctx, netip.MustParseAddr("2001:db8::10")); err != nil || l.State != store.LeaseBound || l.Host != "pxe1" {
		t.Errorf("stored lease after the outage: %+v, %v", l, err)
	}
	if n, m := strings.Count(logs.String(), "lease store unavailable: refusing"), strings.Count(logs.String(), "lease store available again"); n != 1 || m != 1 {
		t.Errorf("%d outage and %d recovery log lines, want one each:\n%s", n, m, logs.String())
	}
}
