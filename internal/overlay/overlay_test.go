package overlay

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The images are byte-identical across builds, and GNU cpio lists them.
func TestImagesDeterministicAndReadableByGNUCpio(t *testing.T) {
	for _, name := range Names(30 * time.Second) {
		var a, b Images
		x, ok, err := a.Open(name)
		if !ok || err != nil {
			t.Fatalf("%s: ok=%v err=%v", name, ok, err)
		}
		y, _, _ := b.Open(name)
		if !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds", name)
		}
		if c, _, _ := a.Open(name); &c[0] != &x[0] {
			t.Errorf("%s not cached", name)
		}
		if _, err := exec.LookPath("cpio"); err != nil {
			if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
				t.Fatal("cpio required")
			}
			t.Skip("cpio not installed")
		}
		p := filepath.Join(t.TempDir(), "img")
		os.WriteFile(p, x, 0o644)
		out, err := exec.Command("sh", "-c", "gzip -dc "+p+" | cpio -t --quiet").CombinedOutput()
		if err != nil {
			t.Fatalf("%s: cpio -t: %v\n%s", name, err, out)
		}
		want := "usr/lib/dracut/hooks/initqueue/online/10-kickstand-wait-v6-route.sh"
		if strings.Contains(name, "updates") {
			want = "etc/systemd/system/basic.target.wants/kickstand-v6fix.service"
		}
		if !strings.Contains(string(out), want) {
			t.Errorf("%s: cpio -t lacks %s:\n%s", name, want, out)
		}
	}
	if _, ok, _ := new(Images).Open("kickstand/overlay/other.img"); ok {
		t.Error("an unknown name was claimed")
	}
}

// The hook's shell is valid and, with no route, gives up after its bound
// without exiting the shell that sources it (dracut sources online hooks).
func TestHookBoundedAndSourceable(t *testing.T) {
	b, err := WaitRouteOverlay(1 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	os.WriteFile(p, b, 0o644)
	if out, err := exec.Command("sh", "-c", "cd "+dir+" && gzip -dc img | cpio -id --quiet").CombinedOutput(); err != nil {
		t.Skipf("cpio: %v %s", err, out)
	}
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "ip"), []byte("#!/bin/sh\nexit 0\n"), 0o755) // no default route
	out, err := exec.Command("sh", "-c", "PATH="+bin+":$PATH; . "+filepath.Join(dir, HookPath)+"; echo still-here").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "still-here") || !strings.Contains(string(out), "no IPv6 default route after 1 s") {
		t.Fatalf("hook: %v\n%s", err, out)
	}
}
