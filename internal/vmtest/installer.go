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
	root, err := RepoRoot()
	if err != nil {
		return "", "", err
	}
	dir, err := InstallerCacheDir()
	if err != nil {
		return "", "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", fmt.Errorf("test installer: %w", err)
	}
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "scripts", "build-test-installer.sh"), dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", "", fmt.Errorf("test installer: build-test-installer.sh %s: %w\n%s", dir, err, out)
	}
	return filepath.Join(dir, "vmlinuz"), filepath.Join(dir, "initrd.img"), nil
}
