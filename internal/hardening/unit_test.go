package hardening

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestSystemdUnit checks contrib/kickstand.service with systemd's own
// verifier, and that it keeps the settings docs/security.md promises: a
// unit that loses one of them would still verify.
func TestSystemdUnit(t *testing.T) {
	vmtest.Need(t, "systemd-analyze")
	root, err := vmtest.RepoRoot()
	must(t, err)
	unit, err := os.ReadFile(filepath.Join(root, "contrib", "kickstand.service"))
	must(t, err)
	settings := map[string][]string{}
	for _, l := range strings.Split(string(unit), "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(l), "=")
		if ok && !strings.HasPrefix(k, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for k, want := range map[string]string{
		"DynamicUser":             "yes",
		"StateDirectory":          "kickstand",
		"ReadWritePaths":          "/var/lib/kickstand",
		"ProtectSystem":           "strict",
		"ProtectHome":             "yes",
		"PrivateTmp":              "yes",
		"NoNewPrivileges":         "yes",
		"AmbientCapabilities":     "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet":   "CAP_NET_BIND_SERVICE",
		"RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6 AF_NETLINK",
	} {
		if got := strings.Join(settings[k], " "); got != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}

	// systemd-analyze verify wants ExecStart's binary to exist.
	bin := kickstandBin(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "kickstand.service")
	must(t, os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/kickstand", bin)), 0o644))
	cmd := exec.Command("systemd-analyze", "verify", path)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+) (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	t.Logf("systemd-analyze security: exposure %s %s", m[1], m[2])
	if string(m[2]) != "OK" {
		t.Errorf("exposure %s %s; want OK (below 2.0)", m[1], m[2])
	}
}
