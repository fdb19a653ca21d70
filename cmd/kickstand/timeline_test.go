package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/server"
)

const timelineConfig = `
server:
  address_v4: 127.0.0.1
  data_dir: data
  token_ttl: 200ms
distros:
  - name: el9
    release: rhel9
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
hosts:
  - name: lo.example.com
    macs: ["52:54:00:07:00:01"]
    ipv4: 127.0.0.1/8
    profile: p
    netboot: install
`

// Issue 16 item 7: the CLI timeline had no status column, so a refused
// /ks looked like a success. Real requests to the real HTTP server: one
// served, one with an expired token, one after the host was built.
func TestTimelineShowsStatusAndReason(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	os.WriteFile(cfg, []byte(timelineConfig), 0o644)
	in, err := server.Open(ctx, cfg, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); in.Events.Run(ctx) }()
	defer wg.Wait()
	defer cancel()
	srv := httptest.NewServer(in.HTTPServer(nil).Handler())
	defer srv.Close()
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	rec, _ := in.Store.Host(ctx, "lo.example.com")
	if code := get("/ks/" + rec.Token); code != 200 {
		t.Fatalf("kickstart = %d", code)
	}
	time.Sleep(300 * time.Millisecond) // past token_ttl
	if code := get("/ks/" + rec.Token); code != 404 {
		t.Fatalf("kickstart with an expired token = %d", code)
	}
	if _, err := in.Install.SetState(ctx, "lo.example.com", "local", install.ByCLI); err != nil {
		t.Fatal(err)
	}
	if code := get("/ks/" + rec.Token); code != 404 {
		t.Fatalf("kickstart after the build = %d", code)
	}

	var out string
	for range 100 { // the recorder writes in batches
		out, err = run(t, "host", "timeline", "lo.example.com", "--config", cfg)
		if err == nil && strings.Count(out, "http.kickstart") == 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("\n%s", out)
	for _, re := range []string{
		`(?m)^TIME\s+EVENT\s+STATUS\s+DETAIL$`,
		`(?m)http\.kickstart\s+200\s+GET /ks/<token>$`,
		`(?m)http\.kickstart\s+404 refused\s+GET /ks/<token> refused: the build token expired$`,
		`(?m)http\.kickstart\s+404 refused\s+GET /ks/<token> refused: no host holds this token$`,
		`(?m)state\s+-\s+install -> local`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("timeline does not match %s", re)
		}
	}
}
