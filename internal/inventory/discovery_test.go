package inventory

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A host's bmc: is checked at load: driver, address, and a password file
// that exists and only its owner can read. The password is never in the
// inventory.
func TestBMCChecked(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok.pw"), []byte("x\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "open.pw"), []byte("x\n"), 0o644)
	os.Chmod(filepath.Join(dir, "open.pw"), 0o644)
	base := "distros:\n  - {name: el9, release: rhel9, kernel: v, initrd: [i]}\nprofiles:\n  - {name: p, distro: el9, vars: {ssh_keys: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com\"}}\nhosts:\n  - name: h1\n    macs: [\"52:54:00:00:00:01\"]\n    profile: p\n    bmc: %s\n"
	cfg := filepath.Join(dir, "k.yaml")
	for _, c := range []struct{ bmc, want string }{
		{`{driver: ipmi, address: "192.0.2.9:623", user: admin, password_file: ok.pw}`, ""},
		{`{driver: redfish, address: "192.0.2.9", password_file: ok.pw}`, "hosts[0].bmc.driver: unknown driver"},
		{`{driver: ipmi, password_file: ok.pw}`, "hosts[0].bmc.address: missing"},
		{`{driver: ipmi, address: "192.0.2.9"}`, "hosts[0].bmc.password_file: missing"},
		{`{driver: ipmi, address: "192.0.2.9", password_file: open.pw}`, "chmod 600"},
		{`{driver: ipmi, address: "192.0.2.9", password_file: nope.pw}`, "no such file"},
		{`{driver: ipmi, address: "192.0.2.9", password: hunter2}`, "unknown"},
	} {
		_, err := Parse(cfg, []byte(strings.Replace(base, "%s", c.bmc, 1)))
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s: %v", c.bmc, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want %q", c.bmc, err, c.want)
		}
	}
}
