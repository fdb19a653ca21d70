package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

const modulePath = "github.com/kickstand/kickstand"

// RepoRoot finds the kickstand checkout by walking up from the working directory (tests run in
// their package directory) and, failing that, from this source file, so that tools started from
// elsewhere (a demo script running `go run`) still find the build script.
func RepoRoot() (string, error) {
	var starts []string
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		starts = append(starts, filepath.Dir(file))
	}
	for _, dir := range starts {
		for {
			mod, err := os.ReadFile(filepath.Join(dir, "go.mod"))
			if err == nil && bytes.Contains(mod, []byte("module "+modulePath+"\n")) {
				return dir, nil
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return "", errors.New("repo root: no go.mod for " + modulePath + " above the working directory")
}

// InstallerCacheDir is where the test installer is built: $KICKSTAND_CACHE/test-installer, or
// the user cache directory ($XDG_CACHE_HOME, else ~/.cache)/kickstand/test-installer. It is
// shared by every package's tests and by `make demo`, so the kernel is downloaded once.
func InstallerCacheDir() (string, error) {
	if dir := os.Getenv("KICKSTAND_CACHE"); dir != "" {
		return filepath.Join(dir, "test-installer"), nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("installer cache dir: %w", err)
	}
	return filepath.Join(base, "kickstand", "test-installer"), nil
}

// Installer returns the test installer's kernel and initrd, building them with
// scripts/build-test-installer.sh when the cache is missing or older than the sources. The script
// locks the cache directory, so parallel test packages may call this at the same time.
func Installer(ctx context.Context) (kernel, initrd string, err error) {
	return InstallerFor(ctx, "amd64")
}

// InstallerFor is Installer for a Debian architecture, amd64 or arm64; the arm64 build is cached
// beside the amd64 one, in test-installer-arm64.
func InstallerFor(ctx context.Context, arch string) (kernel, initrd string, err error) {
	dir, err := InstallerCacheDir()
	if err != nil {
		return "", "", err
	}
	args := []string{}
	if arch != "amd64" {
		dir += "-" + arch
		args = append(args, "--arch", arch)
	}
	if err := buildScript(ctx, dir, args...); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img"), nil
}

// Loaders returns a directory, for server.loaders, holding the loaders Debian ships in packages a
// build machine does not install: shimx64.efi (shim-signed), grubx64.efi (Debian's signed netboot
// GRUB) and grubaa64.efi (arm64 netboot GRUB), fetched with apt-get download and cached.
func Loaders(ctx context.Context) (string, error) {
	dir, err := InstallerCacheDir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(filepath.Dir(dir), "loaders")
	return dir, buildScript(ctx, dir, "--loaders")
}

func buildScript(ctx context.Context, dir string, args ...string) error {
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("test installer: %w", err)
	}
	argv := append([]string{filepath.Join(root, "scripts", "build-test-installer.sh")}, args...)
	cmd := exec.CommandContext(ctx, "bash", append(argv, dir)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("test installer: build-test-installer.sh %s: %w\n%s", strings.Join(append(args, dir), " "), err, out)
	}
	return nil
}

// DracutImage returns a real dracut 059 initramfs (Debian 12's dracut, network-legacy and the
// project's testdata/dracut/90kstest module) and the Debian kernel it was built for, building
// them with scripts/build-dracut-image.sh into build/real-dracut when the cache is missing or
// its sources changed. The build needs root and mmdebstrap, and takes minutes.
func DracutImage(ctx context.Context) (kernel, initrd string, err error) {
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	dir := filepath.Join(root, "build", "real-dracut")
	if err := buildScript(ctx, dir, "--dracut"); err != nil {
		return "", "", err
	}
	return filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img"), nil
}
