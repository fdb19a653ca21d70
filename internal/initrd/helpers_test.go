package initrd

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// requirePeers: with KICKSTAND_REQUIRE_PEERS=1 (make test) a missing tool or privilege fails the
// test instead of skipping it, so CI cannot pass by skipping the real-tool checks.
func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
		t.Fatalf(format+" (KICKSTAND_REQUIRE_PEERS=1)", args...)
	}
	t.Skipf(format, args...)
}

func need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "needs %s in PATH (see scripts/deps.sh)", tool)
		}
	}
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root")
	}
}

// run runs a shell pipeline in dir with stdin and returns its stdout.
func run(t testing.TB, dir string, stdin []byte, script string) []byte {
	t.Helper()
	cmd := exec.Command("bash", "-o", "pipefail", "-c", script)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, stderr.String())
	}
	return out
}

// makeTree builds a small root with the kinds of entries initrds hold. Device nodes need root
// and are added only then.
func makeTree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	mk := func(p string, mode os.FileMode, data string) {
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, mode); err != nil {
			t.Fatal(err)
		}
	}
	mk("init", 0o755, "#!/bin/sh\nexec /bin/sh\n")
	mk("etc/cmdline.d/10-net.conf", 0o644, "ip=dhcp\n")
	mk("usr/bin/tool", os.ModeSetuid|0o755, strings.Repeat("binary\x00data", 5000))
	mk("usr/lib/dracut/hooks/initqueue/online/11-x.sh", 0o644, "echo hi\n")
	mk("usr/lib/modules/empty", 0o600, "")
	mk("usr/share/odd3", 0o644, "abc") // data that needs padding
	for _, l := range [][2]string{{"usr/bin", "bin"}, {"usr/lib", "lib"}, {"/proc/self/mounts", "etc/mtab"}, {"../usr/lib/os-release", "etc/os-release"}} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "tmp"), 0o1777|os.ModeSticky)
	if err := os.Mkdir(filepath.Join(root, "dev"), 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := mknod(filepath.Join(root, "dev/console"), os.ModeDevice|os.ModeCharDevice|0o600, 5, 1); err != nil {
			t.Fatal(err)
		}
		if err := mknod(filepath.Join(root, "dev/loop300"), os.ModeDevice|0o660, 7, 300); err != nil {
			t.Fatal(err)
		}
	}
	if err := mknod(filepath.Join(root, "dev/initctl"), os.ModeNamedPipe|0o600, 0, 0); err != nil {
		t.Fatal(err)
	}
	// Fixed, different mtimes so that listings compare them.
	when := time.Date(2024, 3, 9, 12, 34, 0, 0, time.UTC)
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode()&os.ModeSymlink == 0 {
			os.Chtimes(p, when, when)
		}
		return nil
	})
	return root
}
