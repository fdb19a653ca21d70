package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

var update = flag.Bool("update", false, "rewrite golden files")

// run runs the CLI in-process and returns stdout.
func run(t *testing.T, args ...string) (string, error) {
	out, _, err := run2(t, args...)
	return out, err
}

// run2 is run that also returns stderr.
func run2(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	cmd := newRootCmd()
	var out, errOut bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// Every golden host's kickstart passes the linter for its own release, and
// the Xen host's was rewritten for xvda; a template that breaks a release is
// reported on stderr.
func TestRenderedKickstartsLint(t *testing.T) {
	data := labStore(t)
	for _, h := range []string{"el8.example.com", "newbox.wann.net", "el6.example.com", "xen7.example.com"} {
		out, stderr, err := run2(t, "render", "kickstart", "--config", "../../examples/lab.yaml", "--data", data, h)
		// Warnings are allowed: seed 000's nameservers are not valid IPv6.
		if err != nil || strings.Contains(stderr, ": error:") {
			t.Errorf("%s: err %v, lint problems:\n%s", h, err, stderr)
		}
		if h == "xen7.example.com" && (strings.Contains(out, "sda") && !strings.Contains(out, "the sda names")) {
			t.Errorf("xen kickstart still names sda:\n%s", out)
		}
	}
	// What the rewrites cannot fix is reported with its line: the release
	// rewrite comments out install (removed in RHEL 9), not a bad size.
	cfg := badKickstartConfig(t, "text\ninstall\npart / --size=big\n")
	// The server would refuse it (503), so the preview says so too.
	_, stderr, err := run2(t, "render", "kickstart", "--as-build", "--config", cfg, "--data", "-", "h")
	if err == nil || !strings.Contains(err.Error(), "would not serve") || !strings.Contains(stderr, "h.ks:3: error: argument --size: invalid int value: 'big'") || strings.Contains(stderr, "install has been removed") {
		t.Errorf("lint problem not reported: err %v stderr %q", err, stderr)
	}
}

// badKickstartConfig writes a config whose one host, h, has the kickstart
// template ks, and returns its path.
func badKickstartConfig(t *testing.T, ks string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "bad.ks"), []byte(ks), 0o644)
	cfg := "distros: [{name: d, release: rhel9, kernel: k, initrd: [i]}]\nprofiles: [{name: p, distro: d, kickstart: bad.ks}]\nhosts: [{name: h, macs: [\"52:54:00:00:00:01\"], profile: p}]\n"
	os.WriteFile(filepath.Join(dir, "k.yaml"), []byte(cfg), 0o644)
	return filepath.Join(dir, "k.yaml")
}

// labStore syncs examples/lab.yaml into a fresh data dir and gives every
// host a fixed build token, so rendered output is stable.
func labStore(t *testing.T) string { return storeFor(t, "../../examples/lab.yaml") }

// storeFor is labStore for any config.
func storeFor(t *testing.T, cfg string) string {
	t.Helper()
	dir := t.TempDir()
	in, err := server.Open(context.Background(), cfg, server.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	hosts, _ := in.Store.Hosts(context.Background())
	for _, h := range hosts {
		tok := "TOKEN-" + strings.Split(h.Name, ".")[0]
		if _, err := in.Store.SetHostState(context.Background(), h.Name, store.Transition{State: inventory.StateInstall, Token: tok, Expires: exp}); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestGolden covers every renderer for the four lab hosts: IPv4 EL8, the
// seed-000 IPv6-only EL7, EL6 (legacy syntax) and a Xen EL7 guest.
func TestGolden(t *testing.T) {
	data := labStore(t)
	hosts := []string{"el8.example.com", "newbox.wann.net", "el6.example.com", "xen7.example.com"}
	for _, h := range hosts {
		for _, kind := range []string{"ipxe", "grub", "pxelinux", "cmdline", "kickstart", "explain"} {
			t.Run(h+"/"+kind, func(t *testing.T) {
				args := []string{"render", kind, "--config", "../../examples/lab.yaml", "--data", data, h}
				if kind == "explain" {
					args = []string{"render", "--explain", "--config", "../../examples/lab.yaml", "--data", data, h}
				}
				out, err := run(t, args...)
				if err != nil {
					t.Fatal(err)
				}
				golden := filepath.Join("testdata", "golden", strings.Split(h, ".")[0]+"."+kind)
				if *update {
					os.MkdirAll(filepath.Dir(golden), 0o755)
					if err := os.WriteFile(golden, []byte(out), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run go test -update to create)", err)
				}
				if out != string(want) {
					t.Errorf("render %s %s differs from %s:\n--- got\n%s\n--- want\n%s", kind, h, golden, out, want)
				}
			})
		}
	}
}

// TestSeed000Cmdline is the core issue's example: every word of the
// seed's own dracut line must be there.
func TestSeed000Cmdline(t *testing.T) {
	out, err := run(t, "render", "cmdline", "--config", "../../examples/seed000.yaml", "--data", "-", "newbox.wann.net")
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Fields(out)
	for _, w := range strings.Fields("noipv4 ip=[2401:beef:11::31:0]:::64:::none nameserver=2401:beef:11::a53 nameserver=2401:beef:11::b53 net.ifnames=0 biosdevname=0 inst.ssh") {
		if !contains(got, w) {
			t.Errorf("cmdline lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(out, "inst.ks=http://[2401:beef:20::20]/ks/") {
		t.Errorf("cmdline lacks the v6 kickstart URL:\n%s", out)
	}
}

func TestRenderUnknownHost(t *testing.T) {
	_, err := run(t, "render", "cmdline", "--config", "../../examples/lab.yaml", "--data", "-", "nope.example.com")
	if err == nil || !strings.Contains(err.Error(), "nope.example.com") {
		t.Fatalf("err = %v", err)
	}
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// TestV6FixesGolden shows which seed-000 fixes each release gets, with and
// without a gateway: the explanation, and the iPXE script that carries the
// overlay initrd and inst.updates. The kickstart gets the accept_ra %pre
// loop exactly when race #4 applies, and still lints clean.
func TestV6FixesGolden(t *testing.T) {
	cfg := "testdata/v6fixes.yaml"
	data := storeFor(t, cfg)
	for _, rel := range []string{"rhel7-0", "rhel7-2", "rhel7-9", "rhel8", "rhel9"} {
		for _, gw := range []string{"gw", "nogw"} {
			h := rel + "-" + gw
			t.Run(h, func(t *testing.T) {
				explain, err := run(t, "render", "--explain", "--config", cfg, "--data", data, h)
				if err != nil {
					t.Fatal(err)
				}
				script, err := run(t, "render", "ipxe", "--config", cfg, "--data", data, h)
				if err != nil {
					t.Fatal(err)
				}
				got := explain + "\n" + script
				golden := filepath.Join("testdata", "golden", "v6fix-"+h)
				if *update {
					os.WriteFile(golden, []byte(got), 0o644)
				}
				want, _ := os.ReadFile(golden)
				if got != string(want) {
					t.Errorf("differs from %s:\n--- got\n%s\n--- want\n%s", golden, got, want)
				}
				ks, stderr, err := run2(t, "render", "kickstart", "--config", cfg, "--data", data, h)
				if err != nil || strings.Contains(stderr, ": error:") {
					t.Errorf("kickstart: %v\n%s", err, stderr)
				}
				if hasPre := strings.Contains(ks, "accept_ra_defrtr=1"); hasPre != (gw == "nogw") {
					t.Errorf("accept_ra %%pre present=%v for %s:\n%s", hasPre, h, ks)
				}
				if gw == "gw" && !strings.Contains(ks, "--ipv6gateway=2001:db8::1") {
					t.Errorf("kickstart lacks --ipv6gateway:\n%s", ks)
				}
			})
		}
	}
}

// doctor lists every host whose kickstart the server would refuse to
// serve because it fails lint, and fails.
func TestDoctorListsKickstartsFailingLint(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "bad.ks"), []byte("text\nbogus\nautopart\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "templates", "good.ks"), []byte("text\ninstall\nautopart\n"), 0o644) // install: the release rewrite comments it out
	os.WriteFile(filepath.Join(dir, "k"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(dir, "i"), []byte("i"), 0o644)
	cfg := "server: {templates: templates}\ndistros: [{name: d, release: rhel9, tree: ., kernel: k, initrd: [i]}]\n" +
		"profiles: [{name: bad, distro: d, kickstart: bad.ks}, {name: good, distro: d, kickstart: good.ks}]\n" +
		"hosts: [{name: h1, macs: [\"52:54:00:00:00:01\"], profile: bad, netboot: local}, {name: h2, macs: [\"52:54:00:00:00:02\"], profile: good}]\n"
	os.WriteFile(filepath.Join(dir, "k.yaml"), []byte(cfg), 0o644)
	out, _, err := run2(t, "doctor", "--config", filepath.Join(dir, "k.yaml"), "--data", "-")
	if err == nil || !strings.Contains(out, "host h1: fails lint") || !strings.Contains(out, "Unknown command: bogus") || strings.Contains(out, "host h2") {
		t.Errorf("doctor: err %v\n%s", err, out)
	}
}
