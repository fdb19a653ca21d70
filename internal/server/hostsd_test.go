package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

const hostsdMain = `distros:
  - name: el9
    release: rhel9
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
`

func hostsdHost(name, mac, netboot string) string {
	return "  - name: " + name + "\n    macs: [\"" + mac + "\"]\n    profile: p\n    netboot: " + netboot + "\n"
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openHostsd(t *testing.T) (*Instance, string) {
	t.Helper()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "hosts.d"), 0o755)
	writeFile(t, filepath.Join(dir, "kickstand.yaml"), hostsdMain)
	writeFile(t, filepath.Join(dir, "hosts.d", "a.yaml"), "hosts:\n"+hostsdHost("a1", "52:54:00:00:00:a1", "local")+hostsdHost("mover", "52:54:00:00:00:99", "install"))
	writeFile(t, filepath.Join(dir, "hosts.d", "b.yaml"), "hosts:\n"+hostsdHost("b1", "52:54:00:00:00:b1", "local"))
	in, err := Open(context.Background(), filepath.Join(dir, "kickstand.yaml"), Options{DataDir: filepath.Join(dir, "data"), Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in, dir
}

// A host moved from one hosts.d file to another, unchanged, keeps its live
// state and build token; a removed file takes its hosts with it.
func TestHostsDirMoveKeepsStateRemoveDeletes(t *testing.T) {
	ctx := context.Background()
	in, dir := openHostsd(t)
	if _, err := in.Install.SetState(ctx, "mover", inventory.StateMenu, install.ByCLI); err != nil {
		t.Fatal(err)
	}
	before, err := in.Store.Host(ctx, "mover")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "hosts.d", "a.yaml"), "hosts:\n"+hostsdHost("a1", "52:54:00:00:00:a1", "local"))
	writeFile(t, filepath.Join(dir, "hosts.d", "b.yaml"), "hosts:\n"+hostsdHost("b1", "52:54:00:00:00:b1", "local")+hostsdHost("mover", "52:54:00:00:00:99", "install"))
	if err := in.reload(ctx, false); err != nil {
		t.Fatal(err)
	}
	after, err := in.Store.Host(ctx, "mover")
	if err != nil {
		t.Fatal(err)
	}
	// Not even rewritten: the move is no change to the host.
	if after.State != inventory.StateMenu || after.Token != before.Token || !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Errorf("moved host: state %s, token kept %v, updated %v -> %v; want menu and the row untouched",
			after.State, after.Token == before.Token, before.UpdatedAt, after.UpdatedAt)
	}
	if f, _ := in.Config().HostFile("mover"); !strings.HasSuffix(f, "b.yaml") {
		t.Errorf("mover now declared in %q", f)
	}

	os.Remove(filepath.Join(dir, "hosts.d", "b.yaml"))
	if err := in.reload(ctx, false); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"b1", "mover"} {
		if _, err := in.Store.Host(ctx, n); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("host %s of the removed file: %v", n, err)
		}
	}
	if h, err := in.Store.HostByMAC(ctx, "52:54:00:00:00:a1"); err != nil || h.Name != "a1" {
		t.Errorf("a1: %v, %v", h, err)
	}
}

// A MAC declared in two files is refused with both places named, and the
// server keeps what it had.
func TestHostsDirDuplicateMACRejected(t *testing.T) {
	ctx := context.Background()
	in, dir := openHostsd(t)
	b := filepath.Join(dir, "hosts.d", "b.yaml")
	writeFile(t, b, "hosts:\n"+hostsdHost("b1", "52:54:00:00:00:b1", "local")+hostsdHost("b2", "52:54:00:00:00:A1", "local"))
	err := in.reload(ctx, false)
	want := b + ":7: hosts[1].macs[0]: MAC 52:54:00:00:00:a1 is also used by host a1 (" + filepath.Join(dir, "hosts.d", "a.yaml") + ":2)"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
	if _, err := in.Store.Host(ctx, "b2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("b2 stored despite the error: %v", err)
	}
	if len(in.Config().Hosts) != 3 {
		t.Errorf("config in force has %d hosts, want the previous 3", len(in.Config().Hosts))
	}
}

// An edit of a hosts.d file reaches the store through the watch, without
// a signal.
func TestHostsDirEditSeenByWatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	in, dir := openHostsd(t)
	go in.Watch(ctx, nil, time.Hour)
	time.Sleep(200 * time.Millisecond)
	writeFile(t, filepath.Join(dir, "hosts.d", "b.yaml"), "hosts:\n"+hostsdHost("b1", "52:54:00:00:00:b1", "install"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := in.Store.Host(ctx, "b1")
		if err == nil && h.State == inventory.StateInstall {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("b1 after the edit: %+v, %v", h, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
