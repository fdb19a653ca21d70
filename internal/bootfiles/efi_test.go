package bootfiles

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

// Each distro's Secure Boot pair is served from its own directory: the
// distro's own files when it names them, else Debian's signed builds found
// in server.loaders; shim's optional probes are not found.
func TestEFIDirPerDistro(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	loaders := filepath.Join(dir, "loaders")
	for p, body := range map[string]string{
		"tree/EFI/BOOT/BOOTX64.EFI": "vendor shim", "tree/EFI/BOOT/grubx64.efi": "vendor grub",
		"loaders/shimx64.efi": "debian shim", "loaders/grubx64.efi": "debian grub",
	} {
		os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755)
		os.WriteFile(filepath.Join(dir, p), []byte(body), 0o644)
	}
	st, err := sqlstore.OpenSQLiteMemory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := &inventory.Config{Server: inventory.Server{Loaders: []string{loaders}}}
	for _, d := range []inventory.Distro{
		{Name: "el9", Release: "rhel9", Tree: tree, Kernel: "k", Initrds: []string{"i"}, Shim: "EFI/BOOT/BOOTX64.EFI", GRUB: "EFI/BOOT/grubx64.efi"},
		{Name: "deb", Release: "rhel9", Tree: tree, Kernel: "k", Initrds: []string{"i"}},
	} {
		if err := st.RegisterDistro(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
	}
	f := &Files{Store: st, Config: func() *inventory.Config { return cfg }}
	for name, want := range map[string]string{
		"kickstand/efi/el9/shimx64.efi":  "vendor shim",
		"/kickstand/efi/el9/grubx64.efi": "vendor grub",
		"kickstand/efi/el9//grubx64.efi": "vendor grub", // shim under HTTP boot
		"kickstand/efi/deb/shimx64.efi":  "debian shim",
		"kickstand/efi/deb/grubx64.efi":  "debian grub",
	} {
		file, kind, err := f.Open(ctx, Request{Name: name})
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		b, _ := io.ReadAll(file)
		file.Close()
		if string(b) != want || kind != KindLoader {
			t.Errorf("%s = %q (%s), want %q (loader)", name, b, kind, want)
		}
		if !IsLoader(name[len(name)-len("grubx64.efi"):]) || !IsLoader(mustClean(name)) {
			t.Errorf("%s is not classed as a loader for the timeline", name)
		}
	}
	for _, name := range []string{
		"kickstand/efi/el9/revocations_sku.efi", "kickstand/efi/el9/revocations_sbat.efi",
		"kickstand/efi/el9/shim_certificate_0.efi", "kickstand/efi/el9revocations_sku.efi",
		"kickstand/efi/nosuch/shimx64.efi", "kickstand/efi/el9/shimaa64.efi", "kickstand/efi/el9/x/grubx64.efi",
	} {
		if _, _, err := f.Open(ctx, Request{Name: name}); !IsNotFound(err) {
			t.Errorf("%s: err = %v, want not found", name, err)
		}
	}
}

func mustClean(s string) string { c, _ := CleanName(s); return c }

// Signed tells Debian's signed loaders and kernel from the unsigned
// netboot GRUB, on the real files where they are installed.
func TestSignedOnRealFiles(t *testing.T) {
	cases := map[string]bool{
		"/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi": false,
		"/usr/lib/ipxe/ipxe.efi":                             false,
	}
	home, _ := os.UserCacheDir()
	for _, p := range []string{"loaders/shimx64.efi", "loaders/grubx64.efi", "test-installer/vmlinuz"} {
		cases[filepath.Join(home, "kickstand", p)] = true
	}
	n := 0
	for p, want := range cases {
		if _, err := os.Stat(p); err != nil {
			continue
		}
		n++
		got, err := Signed(p)
		if err != nil || got != want {
			t.Errorf("Signed(%s) = %v, %v; want %v", p, got, err, want)
		}
	}
	if _, err := Signed("/etc/hostname"); err == nil {
		t.Error("a text file passed as a PE image")
	}
	if n == 0 {
		t.Skip("no EFI images on this machine")
	}
}
