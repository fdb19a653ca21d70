package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// structured runs a command with -o json and with -o yaml, checks that
// each parses as what it claims to be and that both say the same, and
// returns the JSON decoded into v. The exit status of both runs is want.
func structured(t *testing.T, want int, v any, args ...string) {
	t.Helper()
	jout, jerr, code := runCLI(t, nil, append(args, "-o", "json")...)
	if code != want {
		t.Fatalf("%s -o json: exit %d, want %d: %s", strings.Join(args, " "), code, want, jerr)
	}
	yout, yerr, code := runCLI(t, nil, append(args, "-o", "yaml")...)
	if code != want {
		t.Fatalf("%s -o yaml: exit %d, want %d: %s", strings.Join(args, " "), code, want, yerr)
	}
	var fromJSON, fromYAML any
	if err := json.Unmarshal([]byte(jout), &fromJSON); err != nil {
		t.Fatalf("%s -o json is not JSON: %v\n%s", strings.Join(args, " "), err, jout)
	}
	if strings.HasPrefix(strings.TrimSpace(yout), "{") || strings.HasPrefix(strings.TrimSpace(yout), "[") {
		t.Fatalf("%s -o yaml printed JSON:\n%s", strings.Join(args, " "), yout)
	}
	if err := yaml.Unmarshal([]byte(yout), &fromYAML); err != nil {
		t.Fatalf("%s -o yaml is not YAML: %v\n%s", strings.Join(args, " "), err, yout)
	}
	// yaml.v3 reads numbers as int; compare through JSON.
	b, err := json.Marshal(fromYAML)
	if err != nil {
		t.Fatal(err)
	}
	var norm any
	json.Unmarshal(b, &norm)
	if !reflect.DeepEqual(fromJSON, norm) {
		t.Errorf("%s: -o json and -o yaml differ:\n%s\n---\n%s", strings.Join(args, " "), jout, yout)
	}
	if err := json.Unmarshal([]byte(jout), v); err != nil {
		t.Fatalf("%s -o json: %v", strings.Join(args, " "), err)
	}
}

// render -o json|yaml: the issue found -o json silently ignored. The body
// is byte for byte the table form's, and a kickstart the server would
// refuse says so (served: false) and still exits 1.
func TestRenderFormats(t *testing.T) {
	data := labStore(t)
	args := []string{"render", "kickstart", "--config", "../../examples/lab.yaml", "--data", data, "el8.example.com"}
	table, _, code := runCLI(t, nil, args...)
	if code != 0 || !strings.Contains(table, "%packages") {
		t.Fatalf("render kickstart: exit %d\n%s", code, table)
	}
	var r rendered
	structured(t, 0, &r, args...)
	if r.Body != table || r.Host != "el8.example.com" || r.Kind != "kickstart" || !r.Served || len(r.Explain) == 0 || len(r.Chains) == 0 {
		t.Errorf("render -o json: %+v", r)
	}

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "bad.ks"), []byte("text\npart / --size=big\n"), 0o644)
	cfg := "distros: [{name: d, release: rhel9, kernel: k, initrd: [i]}]\nprofiles: [{name: p, distro: d, kickstart: bad.ks}]\nhosts: [{name: h, macs: [\"52:54:00:00:00:01\"], profile: p}]\n"
	os.WriteFile(filepath.Join(dir, "k.yaml"), []byte(cfg), 0o644)
	var bad rendered
	structured(t, 1, &bad, "render", "kickstart", "--as-build", "--config", filepath.Join(dir, "k.yaml"), "--data", "-", "h")
	if bad.Served || len(bad.Problems) == 0 || !strings.Contains(bad.Problems[0].Message, "big") {
		t.Errorf("render -o json of a refused kickstart: %+v", bad)
	}
}
