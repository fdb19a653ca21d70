package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/inventory"
)

// The issue: `serve --config /etc/kickstand/kickstand.yaml` failed with no
// sample config anywhere. `kickstand init` writes one and a template
// directory; the sample loads and passes doctor as written, refuses to be
// overwritten, and serve without a config says to run it.
func TestInitWritesSampleThatPassesDoctor(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "etc", "kickstand.yaml")
	if err := os.MkdirAll(filepath.Dir(cfg), 0o755); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, nil, "init", "--config", cfg)
	if code != 0 {
		t.Fatalf("init: exit %d: %s", code, errOut)
	}
	ks := filepath.Join(dir, "etc", "templates", "example.ks")
	for _, p := range []string{cfg, ks, filepath.Join(dir, "etc", "templates", "snippets")} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("init did not write %s: %v\n%s", p, err, out)
		}
	}
	sample, _ := os.ReadFile(cfg)
	if !strings.Contains(string(sample), "# distros:") || !strings.Contains(string(sample), "#     kickstart: example.ks") {
		t.Errorf("sample lacks the commented examples:\n%s", sample)
	}

	// As written: loads, no warnings, doctor passes, and doctor writes nothing.
	c, err := inventory.Load(cfg)
	if err != nil || len(c.Warnings) != 0 {
		t.Fatalf("sample: %v %v", err, c.Warnings)
	}
	if out, errOut, code := runCLI(t, nil, "doctor", "--config", cfg); code != 0 || !strings.Contains(out, "config: ok") {
		t.Fatalf("doctor on the sample: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(dir, "etc", "data")); err == nil {
		t.Error("doctor created the data directory")
	}

	// Uncommented, the examples load too, and the example host's kickstart
	// renders from templates/example.ks and lints clean.
	live := strings.Replace(string(sample), commentOut(sampleObjects), sampleObjects, 1)
	if live == string(sample) {
		t.Fatal("the commented examples are not sampleObjects commented out")
	}
	liveCfg := filepath.Join(dir, "etc", "live.yaml")
	os.WriteFile(liveCfg, []byte(live), 0o644)
	if _, err := inventory.Load(liveCfg); err != nil {
		t.Fatalf("the uncommented examples do not load: %v", err)
	}
	os.WriteFile(ks, append([]byte("# edited by the test\n"), mustRead(t, ks)...), 0o644)
	body, errOut, code := runCLI(t, nil, "render", "kickstart", "--as-build", "--config", liveCfg, "--data", "-", "web1.example.com")
	if code != 0 || strings.Contains(errOut, "error") || !strings.HasPrefix(body, "# edited by the test\n# kickstand default kickstart for web1.example.com") {
		t.Errorf("render of the example host: exit %d, %s\n%s", code, errOut, body)
	}

	// A second init overwrites nothing.
	before := mustRead(t, ks)
	if _, errOut, code := runCLI(t, nil, "init", "--config", cfg); code != 1 || !strings.Contains(errOut, "never overwrites") {
		t.Errorf("second init: exit %d, %s", code, errOut)
	}
	os.Remove(cfg)
	if _, errOut, code := runCLI(t, nil, "init", "--config", cfg); code != 1 || !strings.Contains(errOut, "example.ks exists") {
		t.Errorf("init over an existing example.ks: exit %d, %s", code, errOut)
	}
	if _, err := os.Stat(cfg); err == nil {
		t.Error("init wrote the config although example.ks existed")
	}
	if string(mustRead(t, ks)) != string(before) {
		t.Error("init changed an existing template")
	}

	// serve (any command reading the config) without one says what to do.
	_, errOut, code = runCLI(t, nil, "serve", "--config", cfg)
	if code != 1 || !strings.Contains(errOut, "`kickstand init --config "+cfg+"` writes a commented sample") {
		t.Errorf("serve without a config: exit %d, %s", code, errOut)
	}
}

func mustRead(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// With the default config path the hint is the bare command; another
// missing file (a template, a hosts directory) gets no hint.
func TestMissingConfigHint(t *testing.T) {
	err := &os.PathError{Op: "stat", Path: defaultConfig, Err: os.ErrNotExist}
	if got := missingConfigHint(fmt.Errorf("config: %w", err), defaultConfig).Error(); !strings.HasSuffix(got, "`kickstand init` writes a commented sample to start from") {
		t.Errorf("default path: %s", got)
	}
	other := &os.PathError{Op: "open", Path: "/srv/templates/x.ks", Err: os.ErrNotExist}
	if got := missingConfigHint(other, defaultConfig); got != error(other) {
		t.Errorf("another missing file got the hint: %v", got)
	}
}
