package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/inventory"
)

// readmeYAML is the README's inventory example (its one yaml block).
func readmeYAML(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\n```yaml\n")
	if !ok {
		t.Fatal("README has no yaml block")
	}
	block, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatal("README's yaml block does not end")
	}
	return block + "\n"
}

// The issue: the README's YAML block referred to a template that does not
// exist. Beside what `kickstand init` writes, the block loads without
// warnings and every template it names is there.
func TestReadmeYAMLTemplatesExist(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := runCLI(t, nil, "init", "--config", filepath.Join(dir, "kickstand.yaml")); code != 0 {
		t.Fatalf("init: %s", errOut)
	}
	cfgPath := filepath.Join(dir, "readme.yaml")
	os.WriteFile(cfgPath, []byte(readmeYAML(t)), 0o644)
	c, err := inventory.Load(cfgPath)
	if err != nil {
		t.Fatalf("the README's yaml block does not load: %v", err)
	}
	if len(c.Warnings) > 0 {
		t.Errorf("the README's yaml block loads with warnings: %q", c.Warnings)
	}
	n := 0
	for _, p := range c.Profiles {
		if p.Kickstart == "" {
			continue
		}
		n++
		if _, err := os.Stat(filepath.Join(c.Abs(c.Server.Templates), p.Kickstart)); err != nil {
			t.Errorf("profile %s: template %s: %v", p.Name, p.Kickstart, err)
		}
	}
	if n == 0 {
		t.Error("the README's yaml block names no template: this test checks nothing")
	}
}
