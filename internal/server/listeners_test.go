package server

import (
	"context"
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/kickstand/kickstand/internal/inventory"
)

// What a running server cannot change keeps its running value in the
// config put in force, so the DHCP server never answers in a mode its
// sockets were not opened for; everything else is the file's.
func TestRestartRequiredKeepsRunningValues(t *testing.T) {
	running := &inventory.Config{Path: "/etc/k.yaml"}
	running.Server.HTTP, running.Server.DataDir = ":8080", "data"
	running.DHCP = inventory.DHCP{Enabled: true, Mode: "server", Interfaces: []string{"eth0"}, Workers: 64}
	file := *running
	file.Server.HTTP, file.Server.Store = ":9090", "postgres://k:secret@db/k"
	file.DHCP = inventory.DHCP{Enabled: true, Mode: "proxy", Interfaces: []string{"eth0", "eth1"}, Workers: 64}
	pending, eff := restartRequired(running, &file)
	var fields []string
	for _, p := range pending {
		fields = append(fields, p.String())
	}
	got := strings.Join(fields, "\n")
	if len(pending) != 3 || !strings.Contains(got, "dhcp.mode (running: \"server\"; file: \"proxy\")") ||
		!strings.Contains(got, `dhcp.interfaces (running: ["eth0"]; file: ["eth0","eth1"])`) || !strings.Contains(got, "server.store (running: \"\"; file: \"postgres://") {
		t.Errorf("pending:\n%s", got)
	}
	if strings.Contains(got, "secret") {
		t.Errorf("a store password in the pending list:\n%s", got)
	}
	if eff == &file || eff.DHCP.Mode != "server" || len(eff.DHCP.Interfaces) != 1 || eff.Server.Store != "" || eff.Server.HTTP != ":9090" {
		t.Errorf("config in force: %+v %+v", eff.Server, eff.DHCP)
	}
	if file.DHCP.Mode != "proxy" {
		t.Error("the loaded config was changed")
	}
	if p, eff := restartRequired(running, running); p != nil || eff != running {
		t.Errorf("no change: %v", p)
	}
	// A TFTP server the reload starts (or moves) takes the file's bound;
	// one that keeps running keeps its own.
	tftpOn := *running
	tftpOn.TFTP = inventory.TFTP{Enabled: true, Listen: ":69", MaxTransfers: 7}
	if p, eff := restartRequired(running, &tftpOn); len(p) != 0 || eff.TFTP.MaxTransfers != 7 {
		t.Errorf("TFTP enabled by the reload: %v, max_transfers %d", p, eff.TFTP.MaxTransfers)
	}
	tftpMore := tftpOn
	tftpMore.TFTP.MaxTransfers = 9
	if p, eff := restartRequired(&tftpOn, &tftpMore); len(p) != 1 || eff.TFTP.MaxTransfers != 7 {
		t.Errorf("TFTP running on: %v, max_transfers %d", p, eff.TFTP.MaxTransfers)
	}
	// A DHCP server off before and after: its settings wait for the
	// restart that enabling it takes, silently.
	running.DHCP.Enabled, file.DHCP.Enabled, file.Server.Store = false, false, ""
	if p, eff := restartRequired(running, &file); len(p) != 0 || eff.DHCP.Mode != "server" {
		t.Errorf("DHCP off in both: %v, mode in force %s", p, eff.DHCP.Mode)
	}
}

// A listener moves by opening the new socket before the old closes; one
// that cannot open leaves the old one serving and says so.
func TestListenersMove(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	l := &listeners{ctx: ctx, slots: map[string]*slot{},
		run: func(_ string, f func() error) { wg.Add(1); go func() { defer wg.Done(); f() }() },
		open: map[string]opener{"http": func(ctx context.Context, addr string, _ *inventory.Config) (func() error, error) {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return nil, err
			}
			return func() error { <-ctx.Done(); return ln.Close() }, nil
		}}}
	a, b := freeAddr(t), freeAddr(t)
	s, err := l.start("http", a, nil)
	if err != nil {
		t.Fatal(err)
	}
	l.slots["http"] = s
	cfg := &inventory.Config{}
	cfg.Server.HTTP = b
	commit, _, err := l.prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !dials(b) || !dials(a) {
		t.Fatal("both must listen between prepare and commit")
	}
	commit()
	<-s.stopped
	if dials(a) || !dials(b) || l.slots["http"].addr != b {
		t.Fatalf("after commit: %v", l.addrs())
	}
	// A port in use: refused, the running listener stays.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg.Server.HTTP = taken.Addr().String()
	if _, _, err := l.prepare(cfg); err == nil || !strings.Contains(err.Error(), "server.http: cannot listen on "+taken.Addr().String()) || !strings.Contains(err.Error(), "still listening on "+b) {
		t.Fatalf("prepare on a taken port: %v", err)
	}
	if !dials(b) || l.slots["http"].addr != b {
		t.Fatal("the running listener was lost")
	}
	cancel()
	wg.Wait()
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func dials(addr string) bool {
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	return err == nil
}
