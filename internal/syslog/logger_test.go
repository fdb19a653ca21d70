package syslog

import (
	"context"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
)

// TestLoggerPeer sends real util-linux logger lines, both RFCs, over IPv4
// and IPv6 loopback, to one dual-stack socket (as DefaultAddr listens), and
// over TCP as Anaconda's rsyslog forwarding does.
func TestLoggerPeer(t *testing.T) {
	requireTool(t, "logger")
	c := newCollector()
	s := &Server{}
	pc := runUDP(t, s, ":0", c) // wildcard only to prove dual stack; traffic stays on loopback
	port := strconv.Itoa(pc.LocalAddr().(*net.UDPAddr).Port)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	streamDone := make(chan error, 1)
	go func() { streamDone <- s.ServeStream(ctx, ln, c.handle) }()
	defer func() {
		cancel()
		if err := <-streamDone; err != nil {
			t.Errorf("ServeStream: %v", err)
		}
	}()
	tcpPort := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)

	host, _ := os.Hostname()
	cases := []struct {
		args     []string
		text     string
		from     string
		format   string
		fac, sev int
		msgID    string
		sd       string
	}{
		{[]string{"-n", "127.0.0.1", "-P", port, "--udp", "--rfc3164", "-p", "local3.warning"},
			"v4 bsd line", "127.0.0.1", RFC3164, 19, 4, "", ""},
		{[]string{"-n", "127.0.0.1", "-P", port, "--udp", "--rfc5424", "-p", "daemon.err", "--msgid", "KS1",
			"--sd-id", "ks@32473", "--sd-param", `stage="post 1"`},
			"v4 5424 line", "127.0.0.1", RFC5424, 3, 3, "KS1", `[ks@32473 stage="post 1"]`},
		{[]string{"-n", "::1", "-P", port, "--udp", "--rfc3164"},
			"v6 bsd line", "::1", RFC3164, 1, 5, "", ""},
		{[]string{"-n", "::1", "-P", port, "--udp", "--rfc5424", "--octet-count"},
			"v6 5424 octet-counted line", "::1", RFC5424, 1, 5, "", ""},
		{[]string{"-n", "127.0.0.1", "-P", tcpPort, "--tcp", "--rfc3164", "-p", "local1.info"},
			"tcp bsd line", "127.0.0.1", RFC3164, 17, 6, "", ""},
		{[]string{"-n", "127.0.0.1", "-P", tcpPort, "--tcp", "--rfc5424", "--octet-count"},
			"tcp 5424 line", "127.0.0.1", RFC5424, 1, 5, "", ""},
	}
	for i, tc := range cases {
		args := append(tc.args, "-t", "anaconda", "--id=4242", tc.text)
		if out, err := exec.Command("logger", args...).CombinedOutput(); err != nil {
			t.Fatalf("logger %v: %v\n%s", args, err, out)
		}
		waitFor(t, tc.text, func() bool { return len(c.all()) > i })
		m := c.all()[i]
		if m.Text != tc.text || m.App != "anaconda" || m.ProcID != "4242" || m.Format != tc.format ||
			m.Facility != tc.fac || m.Severity != tc.sev || m.MsgID != tc.msgID {
			t.Errorf("logger %v\n got %+v", args, m)
		}
		if m.Source.Addr() != netip.MustParseAddr(tc.from) {
			t.Errorf("%s: source %v, want %s (unmapped)", tc.text, m.Source, tc.from)
		}
		if m.Hostname == "" || !strings.HasPrefix(host, m.Hostname) {
			t.Errorf("%s: hostname %q, want (a prefix of) %q", tc.text, m.Hostname, host)
		}
		if m.Timestamp.IsZero() || m.Timestamp.Sub(m.Received).Abs().Hours() > 24 {
			t.Errorf("%s: timestamp %v far from received %v", tc.text, m.Timestamp, m.Received)
		}
		if tc.sd != "" && !strings.Contains(m.StructuredData, tc.sd) {
			t.Errorf("%s: structured data %q, want it to contain %q", tc.text, m.StructuredData, tc.sd)
		}
	}
}
