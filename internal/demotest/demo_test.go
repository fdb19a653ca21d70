package demotest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// repoRoot is the checkout this test runs in.
func repoRoot(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// depsList is scripts/deps.sh's package list: the tests' (list "") or the
// demo's ("demo").
func depsList(t *testing.T, root, list string) []string {
	t.Helper()
	args := []string{filepath.Join(root, "scripts", "deps.sh"), "--list"}
	if list != "" {
		args = append(args, list)
	}
	out, err := exec.Command("bash", args...).Output()
	if err != nil {
		t.Fatalf("deps.sh --list %s: %v", list, err)
	}
	return strings.Fields(string(out))
}

// closure is every package apt would install for pkgs on a machine that
// has none of them: their Depends and Pre-Depends, recursively (make demo
// installs with --no-install-recommends).
func closure(t *testing.T, pkgs []string) map[string]bool {
	t.Helper()
	args := append([]string{"depends", "--recurse", "--no-recommends", "--no-suggests", "--no-conflicts",
		"--no-breaks", "--no-replaces", "--no-enhances"}, pkgs...)
	out, err := exec.Command("apt-cache", args...).Output()
	if err != nil {
		t.Fatalf("apt-cache depends: %v", err)
	}
	c := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if l != "" && !strings.HasPrefix(l, " ") {
			c[l] = true
		}
	}
	for _, p := range pkgs {
		if !c[p] {
			t.Fatalf("apt-cache depends does not know %s (apt-get update?)", p)
		}
	}
	return c
}

// installed is dpkg's list of installed packages, name:arch.
func installed(t *testing.T) map[string]bool {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Package}:${Architecture} ${db:Status-Abbrev}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	m := map[string]bool{}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[1], "ii") {
			m[f[0]] = true
		}
	}
	return m
}

// The demo's package list pulls in none of the tests' peers, by apt's own
// dependency resolution; and make demo asks for that list, not the tests'.
func TestDemoListHoldsNoTestPeers(t *testing.T) {
	vmtest.Need(t, "apt-cache", "make")
	root := repoRoot(t)
	demo := depsList(t, root, "demo")
	c := closure(t, demo)
	for _, p := range depsList(t, root, "") {
		if c[p] && !slices.Contains(demo, p) {
			t.Errorf("the demo's packages pull in %s, which only the tests need", p)
		}
	}
	for _, p := range []string{"chromium", "kea-dhcp4-server", "postgresql", "nginx-light", "prometheus", "ovmf", "qemu-system-arm"} {
		if c[p] {
			t.Errorf("the demo would install %s", p)
		}
	}
	out, err := exec.Command("make", "-C", root, "-n", "demo").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n demo: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "deps.sh") && !strings.Contains(l, "deps.sh demo") {
			t.Errorf("make demo runs the tests' dependency list: %s", l)
		}
	}
}

// A fresh clone's make demo boots the VM and reports built, and the
// packages it installed (a dpkg list before and after) are all in the
// demo's dependency closure.
func TestFreshCloneDemo(t *testing.T) {
	vmtest.RequireRoot(t)
	vmtest.Need(t, "apt-cache", "dpkg-query", "git", "make", "go")
	root := repoRoot(t)
	if out, _ := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output(); len(out) > 0 {
		t.Logf("the clone is of HEAD; uncommitted changes are not in it:\n%s", out)
	}
	c := closure(t, depsList(t, root, "demo"))
	clone := filepath.Join(t.TempDir(), "kickstand")
	if out, err := exec.Command("git", "clone", "-q", root, clone).CombinedOutput(); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	before := installed(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", "demo")
	cmd.Dir = clone
	cmd.Env = append(os.Environ(), "KICKSTAND_NS_PREFIX="+vmtest.NSPrefix()+"dt")
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("make demo took %s", time.Since(start).Round(time.Second))
	if err != nil || !strings.Contains(string(out), "RESULT: bios1 booted from the network") {
		t.Fatalf("make demo on a fresh clone: %v\n%s", err, out)
	}
	for p := range installed(t) {
		if before[p] {
			continue
		}
		if name, _, _ := strings.Cut(p, ":"); !c[name] {
			t.Errorf("make demo installed %s, which the demo's packages do not need", p)
		}
	}
}
