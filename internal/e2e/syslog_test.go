package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestSyslogToTimeline: lines sent with util-linux logger from the client
// namespace, from bios1's address, land in bios1's timeline (UDP and TCP),
// and the rendered command line carries inst.syslog=.
func TestSyslogToTimeline(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.RequireRoot(t)
	vmtest.Need(t, "logger", "ip")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2es")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, data := labConfig(t, func(s string) string {
		return s + "\nsyslog:\n  enabled: true\n  listen: \":514\"\n"
	})
	k := startKickstand(t, ctx, lab, cfg, data)
	if err := lab.Run(ctx, lab.Cli, "ip", "addr", "add", "192.0.2.10/24", "dev", vmtest.CliVeth); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--udp", "--rfc3164", "-t", "anaconda", "hello over udp from bios1"},
		{"--tcp", "--rfc5424", "-t", "anaconda", "hello over tcp from bios1"},
	} {
		argv := append([]string{"logger", "-n", vmtest.SrvIPv4, "-P", "514"}, args...)
		if err := lab.Run(ctx, lab.Cli, argv...); err != nil {
			t.Fatal(err)
		}
	}
	tl := k.waitTimeline(t, "bios1", regexp.MustCompile(`(?s)hello over udp.*hello over tcp|hello over tcp.*hello over udp`), 15*time.Second)
	for _, want := range []string{"syslog", "hello over udp from bios1", "hello over tcp from bios1"} {
		if !strings.Contains(tl, want) {
			t.Errorf("timeline lacks %q:\n%s", want, tl)
		}
	}
	cmdline, err := runOut(k.bin, "render", "cmdline", "--config", cfg, "--data", data, "bios1")
	if err != nil || !strings.Contains(cmdline, "inst.syslog=192.0.2.1:514") {
		t.Errorf("cmdline lacks inst.syslog: %v %s", err, cmdline)
	}
}
