package overlay

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
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
		want := HookPaths
		if strings.Contains(name, "updates") {
			want = []string{"etc/systemd/system/basic.target.wants/kickstand-v6fix.service"}
		} else if got := strings.Fields(string(out)); len(got) != len(HookPaths) {
			// No directory entries: one on lib/ or lib/dracut/hooks would replace
			// the image's symlink with an empty directory.
			t.Errorf("%s: want only the hook files, got %v", name, got)
		}
		for _, w := range want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: cpio -t lacks %s:\n%s", name, w, out)
			}
		}
	}
	if _, ok, _ := new(Images).Open("kickstand/overlay/other.img"); ok {
		t.Error("an unknown name was claimed")
	}
}

// hookEnv extracts the hook and makes a bin directory holding only what a
// stock dracut image is sure to have besides the shell: ip (a fake, given
// as a script) and sleep.
func hookEnv(t *testing.T, wait time.Duration, ip string) (hook, bin string) {
	t.Helper()
	b, err := WaitRouteOverlay(wait)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "img")
	os.WriteFile(p, b, 0o644)
	if out, err := exec.Command("sh", "-c", "cd "+dir+" && gzip -dc img | cpio -id --quiet").CombinedOutput(); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("cpio: %v %s", err, out)
		}
		t.Skipf("cpio: %v %s", err, out)
	}
	bin = filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "ip"), []byte("#!/bin/sh\n"+ip), 0o755)
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Fatal(err)
	}
	os.Symlink(sleep, filepath.Join(bin, "sleep"))
	return filepath.Join(dir, HookPaths[0]), bin
}

// runHook sources the hook twice in each shell dracut images use (a POSIX
// sh and bash) with PATH holding only ip and sleep.
func runHook(t *testing.T, hook, bin string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, sh := range []string{"/bin/sh", "/bin/bash"} {
		if _, err := os.Stat(sh); err != nil {
			continue
		}
		b, err := exec.Command("env", "-i", "PATH="+bin, "COUNT="+filepath.Join(bin, "calls-"+filepath.Base(sh)), sh, "-c", ". "+hook+"; . "+hook+"; echo still-here").CombinedOutput()
		if err != nil || !strings.Contains(string(b), "still-here") {
			t.Fatalf("%s: hook: %v\n%s", sh, err, b)
		}
		if strings.Contains(string(b), "not found") {
			t.Errorf("%s: the hook needs a command a dracut image may lack:\n%s", sh, b)
		}
		out[sh] = string(b)
	}
	return out
}

// With no route the hook gives up after its bound, in wall time: an `ip`
// that takes a whole second per call (a slow CPU) is asked only a few times
// in a 2 s bound, where counting 0.2 s passes would have made 10 calls. It
// does not exit the shell that sources it, and waits once when sourced twice.
func TestHookBoundedInWallTime(t *testing.T) {
	hook, bin := hookEnv(t, 2*time.Second, "echo x >>\"$COUNT\"\nsleep 1\n")
	for sh, out := range runHook(t, hook, bin) {
		if strings.Count(out, "no IPv6 default route after 2 s; fetching anyway") != 1 {
			t.Errorf("%s: want one give-up line:\n%s", sh, out)
		}
		calls, _ := os.ReadFile(filepath.Join(bin, "calls-"+filepath.Base(sh)))
		// At least one call; at most a few: a loaded machine may take
		// more than the bound for the first call and its sleep.
		if n := strings.Count(string(calls), "x"); n < 1 || n > 4 {
			t.Errorf("%s: ip called %d times in a 2 s bound with 1 s per call", sh, n)
		}
	}
}

// With a route, the hook logs its first line (without head) and goes on.
func TestHookLogsTheRoute(t *testing.T) {
	hook, bin := hookEnv(t, 30*time.Second, "echo 'default via fe80::1 dev eth0 proto ra metric 1024'\necho 'default via fe80::2 dev eth0 proto ra'\n")
	for sh, out := range runHook(t, hook, bin) {
		if !regexp.MustCompile(`kickstand: IPv6 default route after [01] s: default via fe80::1 dev eth0 proto ra metric 1024\n`).MatchString(out) || strings.Contains(out, "fe80::2") {
			t.Errorf("%s: want the first route logged:\n%s", sh, out)
		}
	}
}

// The EL7 updates.img script removes BOOTPROTO from an ifcfg with an empty
// IPADDR (race #2), leaves others alone, and waits for a default route with
// a bound (race #3), using only bash builtins, ip, sleep and sed.
func TestEL7UpdatesScript(t *testing.T) {
	b, err := EL7Updates(1 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "img"), b, 0o644)
	if out, err := exec.Command("sh", "-c", "cd "+dir+" && gzip -dc img | cpio -id --quiet").CombinedOutput(); err != nil {
		t.Fatalf("cpio: %v %s", err, out)
	}
	ifcfg := filepath.Join(dir, "ifcfg")
	os.MkdirAll(ifcfg, 0o755)
	os.WriteFile(filepath.Join(ifcfg, "ifcfg-eth0"), []byte("DEVICE=eth0\nBOOTPROTO=static\nIPADDR=\nIPV6ADDR=2001:db8::10/64\n"), 0o644)
	os.WriteFile(filepath.Join(ifcfg, "ifcfg-eth1"), []byte("DEVICE=eth1\nBOOTPROTO=dhcp\n"), 0o644)
	bin := filepath.Join(dir, "bin")
	os.MkdirAll(bin, 0o755)
	os.WriteFile(filepath.Join(bin, "ip"), []byte("#!/bin/sh\nexit 0\n"), 0o755)
	for _, tool := range []string{"sleep", "sed"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatal(err)
		}
		os.Symlink(p, filepath.Join(bin, tool))
	}
	out, err := exec.Command("env", "-i", "PATH="+bin, "KICKSTAND_IFCFG_DIR="+ifcfg, "/bin/bash", filepath.Join(dir, "usr/libexec/kickstand-v6fix.sh")).CombinedOutput()
	if err != nil || strings.Contains(string(out), "not found") || !strings.Contains(string(out), "no IPv6 default route after 1 s") {
		t.Fatalf("script: %v\n%s", err, out)
	}
	eth0, _ := os.ReadFile(filepath.Join(ifcfg, "ifcfg-eth0"))
	eth1, _ := os.ReadFile(filepath.Join(ifcfg, "ifcfg-eth1"))
	if strings.Contains(string(eth0), "BOOTPROTO") || !strings.Contains(string(eth1), "BOOTPROTO=dhcp") {
		t.Errorf("ifcfg edits wrong:\neth0:\n%s\neth1:\n%s", eth0, eth1)
	}
}
