package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/server"
)

// Issue 16 item 1: hosts could only be added by editing YAML, an imported
// distro's profile was unusable from the file
// (`lab-imp.yaml:119: hosts[5].profile: unknown profile "rocky9.4-imp"`),
// and there was no way to remove a distro.
func TestLiveObjectsCLI(t *testing.T) {
	media, _ := distroTree(t)
	cfg := distroConfig(t, 8080)
	base, _ := os.ReadFile(cfg)
	withHost := string(base) + `hosts:
  - name: owned.example.com
    macs: ["52:54:00:16:00:01"]
    profile: ownedprofile
  - name: imp.example.com
    macs: ["52:54:00:16:00:02"]
    profile: rocky9.4-imp
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com"}
`
	os.WriteFile(cfg, []byte(withHost), 0o644)
	c := "--config=" + cfg

	// Before the import the file is rejected at the host's line...
	_, err := run(t, "host", "list", c)
	if err == nil || !strings.Contains(err.Error(), `kickstand.yaml:22: hosts[1].profile: unknown profile "rocky9.4-imp"`) {
		t.Fatalf("before the import: %v", err)
	}
	// ...and the import, which needs no valid file of hosts, makes it usable.
	os.WriteFile(cfg, base, 0o644)
	if _, errOut, err := run2(t, "distro", "import", "--name", "rocky9.4-imp", media, c); err != nil {
		t.Fatalf("import: %v\n%s", err, errOut)
	}
	os.WriteFile(cfg, []byte(withHost), 0o644)
	in, err := openPreview(context.Background(), &globals{config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	evs, _ := in.Store.Events(context.Background(), "", 0, 0)
	in.Close()
	var all []string
	for _, e := range evs {
		all = append(all, e.Detail)
	}
	if !slices.Contains(all, "distro rocky9.4-imp imported live (by cli)") || !slices.Contains(all, "profile rocky9.4-imp imported live (by cli)") {
		t.Errorf("the import is not on the timeline: %q", all)
	}
	out, err := run(t, "host", "list", c)
	if err != nil || !strings.Contains(out, "imp.example.com") || !strings.Contains(out, "rocky9.4-imp") {
		t.Fatalf("a file host on the imported profile: %v\n%s", err, out)
	}
	// Every command that reads the file knows it, doctor and migrate too.
	for _, args := range [][]string{{"doctor"}, {"migrate"}, {"render", "ipxe", "imp.example.com"}} {
		if out, err := run(t, append(args, c)...); err != nil && strings.Contains(err.Error(), "unknown profile") {
			t.Errorf("%v: %v\n%s", args, err, out)
		}
	}

	// host add: checked as the file is, with the file's messages.
	_, err = run(t, "host", "add", "web1", "--profile", "nope", "--mac", "52:54:00:16:00:10", "--ipv4", "192.0.2.300/24", c)
	for _, want := range []string{`host web1: ipv4: "192.0.2.300/24" is not an address/prefix`, `host web1: profile: unknown profile "nope"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("host add invalid: %v, want %q", err, want)
		}
	}
	_, err = run(t, "host", "add", "web1", "--profile", "rocky9.4-imp", "--mac", "52:54:00:16:00:01", "--var", "ssh_keys=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com", c)
	if err == nil || !strings.Contains(err.Error(), "MAC 52:54:00:16:00:01 is also used by host owned.example.com") {
		t.Errorf("host add with a taken MAC: %v", err)
	}
	// The imported profile names no kickstart: its hosts get the built-in
	// one, so one nobody could log into is refused, live or in the file.
	_, err = run(t, "host", "add", "web0", "--profile", "rocky9.4-imp", "--mac", "52:54:00:16:00:0f", c)
	if err == nil || !strings.Contains(err.Error(), "host web0: vars: nobody could log into the installed machine") {
		t.Errorf("host add without a login on a live profile: %v", err)
	}
	out, err = run(t, "host", "add", "web1", "--profile", "rocky9.4-imp", "--mac", "52-54-00-16-00-10", "--ipv4", "192.0.2.61/24", "--netboot", "install", "--var", "rootpw=$6$kickstandtest$5MS9oYuEhtNmSVDHCkrJI/DqZnbLIT/8EAaPqkN.4ywAIgaWBmTuZSsEv4Yys3y6iq.mc7wUFaTvVGsO537yn/", c)
	if err != nil || out != "web1: added (install)\n" {
		t.Fatalf("host add: %v %q", err, out)
	}
	out, err = run(t, "host", "show", "web1", c)
	if err != nil || !strings.Contains(out, `"origin": "live"`) || !strings.Contains(out, "52:54:00:16:00:10") || strings.Contains(out, "kickstandtest") {
		t.Errorf("host show: %v\n%s", err, out)
	}
	// host edit changes only what it is given; the state stays.
	out, err = run(t, "host", "edit", "web1", "--ipv4", "192.0.2.62/24", c)
	if err != nil || out != "web1: edited (install)\n" {
		t.Fatalf("host edit: %v %q", err, out)
	}
	out, _ = run(t, "host", "show", "web1", c)
	if !strings.Contains(out, "192.0.2.62/24") || !strings.Contains(out, "52:54:00:16:00:10") || !strings.Contains(out, "rootpw") {
		t.Errorf("after edit:\n%s", out)
	}
	if _, err := run(t, "host", "edit", "web1", "--var", "rootpw=", "--var", "user=ops", "--var", "ssh_keys=ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM ops@example.com", c); err != nil {
		t.Fatal(err)
	}
	if out, _ = run(t, "host", "show", "web1", c); strings.Contains(out, "rootpw") || !strings.Contains(out, `"user"`) {
		t.Errorf("--var rootpw= did not remove it, or --var user=ops did not add it:\n%s", out)
	}
	// A file host is the file's.
	_, err = run(t, "host", "edit", "owned.example.com", "--ipv4", "192.0.2.63/24", c)
	if err == nil || !strings.Contains(err.Error(), "host owned.example.com is declared in "+cfg+", which owns it: edit it there, not live") {
		t.Errorf("edit of a file host: %v", err)
	}
	if _, err = run(t, "host", "rm", "owned.example.com", c); err == nil || !strings.Contains(err.Error(), "which owns it") {
		t.Errorf("rm of a file host: %v", err)
	}

	// The timeline says who did it.
	out, err = run(t, "host", "timeline", "web1", c)
	for _, want := range []string{"host web1 added live (by cli)", "(new) -> install (by cli)", "host web1 edited live: ipv4 (by cli)"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("timeline lacks %q: %v\n%s", want, err, out)
		}
	}

	// profile add/edit/rm, and what is in use stays.
	if _, err := run(t, "profile", "add", "p2", "--distro", "rocky9.4-imp", "--loader", "floppy", c); err == nil ||
		err.Error() != `profile p2: loader: unknown loader "floppy" (want ipxe, grub, pxelinux or shim)` {
		t.Errorf("profile add invalid: %v", err)
	}
	if out, err := run(t, "profile", "add", "p2", "--distro", "rocky9.4-imp", "--kernel-args", "inst.text", c); err != nil || out != "profile p2: added\n" {
		t.Fatalf("profile add: %v %q", err, out)
	}
	if _, err := run(t, "profile", "edit", "p2", "--loader", "grub", c); err != nil {
		t.Fatal(err)
	}
	out, _ = run(t, "profile", "list", c)
	if !strings.Contains(out, "p2") || !strings.Contains(out, "grub") || !strings.Contains(out, "live") || !strings.Contains(out, "ownedprofile") {
		t.Errorf("profile list:\n%s", out)
	}
	if _, err := run(t, "profile", "edit", "ownedprofile", "--loader", "grub", c); err == nil || !strings.Contains(err.Error(), "which owns it") {
		t.Errorf("edit of a file profile: %v", err)
	}
	if _, err := run(t, "host", "edit", "web1", "--profile", "p2", c); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "profile", "rm", "p2", c); err == nil || !strings.Contains(err.Error(), "profile p2 is used by host web1") {
		t.Errorf("rm of a used profile: %v", err)
	}
	if _, err := run(t, "distro", "rm", "rocky9.4-imp", c); err == nil || !strings.Contains(err.Error(), "distro rocky9.4-imp is used by profile") {
		t.Errorf("rm of a used distro: %v", err)
	}
	if _, err := run(t, "distro", "rm", "owned", c); err == nil || !strings.Contains(err.Error(), "which owns it") {
		t.Errorf("rm of a file distro: %v", err)
	}

	// Removing in order: host, profiles, distro.
	if out, err := run(t, "host", "rm", "web1", c); err != nil || out != "web1: removed\n" {
		t.Fatalf("host rm: %v %q", err, out)
	}
	if _, err := run(t, "host", "show", "web1", c); err == nil {
		t.Error("removed host still shown")
	}
	os.WriteFile(cfg, base, 0o644) // the file's host no longer uses the imported profile
	for _, args := range [][]string{{"profile", "rm", "p2"}, {"profile", "rm", "rocky9.4-imp"}, {"distro", "rm", "rocky9.4-imp"}} {
		if _, err := run(t, append(args, c)...); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(cfg), "data", "distros", "rocky9.4-imp", "images", "pxeboot", "vmlinuz")); err != nil {
		t.Errorf("distro rm removed the imported tree: %v", err)
	}
	out, _ = run(t, "distro", "list", "-o", "json", c)
	var ds []map[string]any
	json.Unmarshal([]byte(out), &ds)
	if len(ds) != 1 || ds[0]["name"] != "owned" {
		t.Errorf("distros after rm: %s", out)
	}
}

// A host added with the CLI while `serve` runs is served at once, from
// its own address, and a removed one is not: the running server follows
// the store (install.Service.Follow), as it does another server's writes.
func TestLiveHostServedWhileServing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	os.WriteFile(cfg, []byte(strings.Split(timelineConfig, "hosts:")[0]), 0o644)
	in, err := server.Open(ctx, cfg, server.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); in.Install.Follow(ctx, 20*time.Millisecond) }()
	defer wg.Wait()
	defer cancel()
	srv := httptest.NewServer(in.HTTPServer(nil).Handler())
	defer srv.Close()
	script := func() string {
		resp, err := http.Get(srv.URL + "/boot.ipxe")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		for range 200 {
			if ok(script()) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Fatalf("%s; last answer:\n%s", what, script())
	}
	if s := script(); strings.Contains(s, "installing live.example.com") {
		t.Fatalf("served before it exists:\n%s", s)
	}
	if _, err := run(t, "host", "add", "live.example.com", "--profile", "p", "--mac", "52:54:00:16:07:01", "--ipv4", "127.0.0.1/8", "--netboot", "install", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	waitFor("the running server never served the added host", func(s string) bool { return strings.Contains(s, "installing live.example.com") })
	if _, err := run(t, "host", "rm", "live.example.com", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	waitFor("the running server still serves the removed host", func(s string) bool { return !strings.Contains(s, "live.example.com") })
}

// host add and edit print the changed host as host build does: a line,
// or with -o json the API's view of it.
func TestHostAddFormats(t *testing.T) {
	cfg := distroConfig(t, 8080)
	out, err := run(t, "host", "add", "j1", "--profile", "ownedprofile", "--mac", "52:54:00:16:08:01", "-o", "json", "--config", cfg)
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal([]byte(out), &h); err != nil || h["name"] != "j1" || h["origin"] != "live" || h["state"] != "local" {
		t.Errorf("host add -o json: %v\n%s", err, out)
	}
	out, err = run(t, "host", "edit", "j1", "--netboot", "install", "-o", "yaml", "--config", cfg)
	if err != nil || !strings.Contains(out, "state: install") {
		t.Errorf("host edit -o yaml: %v\n%s", err, out)
	}
	if _, err := run(t, "host", "rm", "j1", "-o", "json", "--config", cfg); err == nil {
		t.Error("host rm -o json: prints no data, so -o json is refused")
	}
}
