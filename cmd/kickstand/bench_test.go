package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/inventory"
)

// The issue: `kickstand bench inventory --n 100000`, as docs/performance.md
// writes it, failed with "--tree is required". Both forms the docs give
// run as written in an empty directory and write configs of 100,000 hosts
// that load.
func TestBenchInventoryAsDocumented(t *testing.T) {
	doc, err := os.ReadFile("../../docs/performance.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []string{"`kickstand bench\ninventory --n 100000`", "`--hosts-dir hosts.d --per-file\n1000`"} {
		if !strings.Contains(string(doc), form) {
			t.Fatalf("docs/performance.md no longer says %s; update this test with it", form)
		}
	}
	for _, args := range [][]string{
		{"bench", "inventory", "--n", "100000"},
		{"bench", "inventory", "--n", "100000", "--hosts-dir", "hosts.d", "--per-file", "1000"},
	} {
		dir := t.TempDir()
		t.Chdir(dir)
		out, errOut, code := runCLI(t, nil, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", strings.Join(args, " "), code, errOut)
		}
		cfg := filepath.Join(dir, "kickstand.yaml")
		os.WriteFile(cfg, []byte(out), 0o644)
		c, err := inventory.Load(cfg)
		if err != nil {
			t.Fatalf("%s: the config does not load: %v", strings.Join(args, " "), err)
		}
		if len(c.Hosts) != 100000 {
			t.Errorf("%s: %d hosts", strings.Join(args, " "), len(c.Hosts))
		}
		if err := c.CheckFiles(); err != nil {
			t.Errorf("%s: %v", strings.Join(args, " "), err)
		}
	}
}
