package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// doctor says which chain each firmware gets per profile, and warns when a
// Secure Boot profile would serve an unsigned GRUB or kernel.
func TestDoctorSecureBootChains(t *testing.T) {
	const unsigned = "/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi"
	if _, err := os.Stat(unsigned); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("needs %s (grub-efi-amd64-bin)", unsigned)
		}
		t.Skipf("needs %s", unsigned)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "k.yaml")
	os.WriteFile(cfg, []byte(`
server:
  address_v4: 192.0.2.1
distros:
  - name: unsigned
    release: rhel9
    arch: x86_64
    tree: `+filepath.Dir(unsigned)+`
    kernel: grubnetx64.efi
    initrd: [grubnetx64.efi]
    grub: grubnetx64.efi
  - name: arm
    release: rhel9
    arch: aarch64
    tree: `+filepath.Dir(unsigned)+`
    kernel: grubnetx64.efi
    initrd: [grubnetx64.efi]
profiles:
  - name: sb
    distro: unsigned
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
    secure_boot: true
  - name: arm
    distro: arm
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
`), 0o644)
	out, _ := run(t, "doctor", "--config", cfg)
	for _, want := range []string{
		"profile sb (distro unsigned, x86_64):",
		"UEFI PXE x86_64: kickstand/efi/unsigned/shimx64.efi (Secure Boot chain",
		"warning: Secure Boot GRUB " + unsigned + " is not signed: shim refuses it",
		"warning: Secure Boot kernel " + unsigned + " is not signed: GRUB refuses it",
		"profile arm (distro arm, aarch64):",
		"UEFI PXE arm64: grubaa64.efi (arm64 firmware gets GRUB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "profile arm (distro arm, aarch64):\n  BIOS") {
		t.Errorf("arm64 profile listed BIOS chains:\n%s", out)
	}
}
