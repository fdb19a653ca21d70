package main

import (
	"encoding/json"
	"fmt"
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

// doctor -o json|yaml (the issue: silently ignored) holds what the text
// shows: the failing kickstarts with their lint errors, every loader with
// where it was found, and each profile's chains; problems still exit 1.
func TestDoctorFormats(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "bad.ks"), []byte("text\nbogus\nautopart\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "templates", "good.ks"), []byte("text\nautopart\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "k"), []byte("k"), 0o644)
	os.WriteFile(filepath.Join(dir, "i"), []byte("i"), 0o644)
	cfg := "server: {templates: templates, address_v4: 192.0.2.1}\ndistros: [{name: d, release: rhel9, tree: ., kernel: k, initrd: [i]}]\n" +
		"profiles: [{name: bad, distro: d, kickstart: bad.ks}, {name: good, distro: d, kickstart: good.ks}]\n" +
		"hosts: [{name: h1, macs: [\"52:54:00:00:00:01\"], profile: bad}, {name: h2, macs: [\"52:54:00:00:00:02\"], profile: good}]\n"
	os.WriteFile(filepath.Join(dir, "k.yaml"), []byte(cfg), 0o644)
	args := []string{"doctor", "--config", filepath.Join(dir, "k.yaml"), "--data", "-"}
	table, _, code := runCLI(t, nil, args...)
	if code != 1 || !strings.Contains(table, "host h1: fails lint") {
		t.Fatalf("doctor: exit %d\n%s", code, table)
	}
	var r doctorReport
	structured(t, 1, &r, args...)
	if r.Hosts != 2 || r.Problems != 1 || len(r.Kickstarts) != 1 || r.Kickstarts[0].Host != "h1" || !r.Kickstarts[0].Lint ||
		!strings.Contains(strings.Join(r.Kickstarts[0].Problems, "\n"), "Unknown command: bogus") {
		t.Errorf("doctor -o json kickstarts: %+v", r)
	}
	if len(r.Loaders) == 0 || r.Loaders[0].Name != "undionly.kpxe" || r.Loaders[0].Package != "ipxe" {
		t.Errorf("doctor -o json loaders: %+v", r.Loaders)
	}
	for _, l := range r.Loaders {
		if l.Path != "" && !strings.Contains(table, l.Name+"  ") {
			t.Errorf("loader %s in json, not in the table", l.Name)
		}
	}
	if len(r.Profiles) != 2 || r.Profiles[0].Name != "bad" || len(r.Profiles[0].Chains) == 0 || !strings.Contains(table, r.Profiles[0].Chains[0]) {
		t.Errorf("doctor -o json profiles: %+v", r.Profiles)
	}
}

// token list, migrate and version print their data in all three formats.
func TestListingFormats(t *testing.T) {
	cfg := writeMinimalConfig(t)
	if _, e, code := runCLI(t, nil, "--config", cfg, "token", "create", "--name", "ci"); code != 0 {
		t.Fatalf("token create: %s", e)
	}
	var toks []struct {
		Name    string `json:"name"`
		Created string `json:"created_at"`
	}
	structured(t, 0, &toks, "--config", cfg, "token", "list")
	table, _, _ := runCLI(t, nil, "--config", cfg, "token", "list")
	if len(toks) != 1 || toks[0].Name != "ci" || !strings.Contains(table, "ci  ") {
		t.Errorf("token list -o json: %+v; table:\n%s", toks, table)
	}

	var st schemaStatus
	structured(t, 0, &st, "--config", cfg, "migrate")
	table, _, _ = runCLI(t, nil, "--config", cfg, "migrate")
	if st.Version == 0 || st.Version != st.Latest || table != fmtSchema(st) {
		t.Errorf("migrate -o json %+v, table %q", st, table)
	}

	var v versionInfo
	structured(t, 0, &v, "version")
	if v.Version == "" || v.Go == "" {
		t.Errorf("version -o json: %+v", v)
	}
}

func fmtSchema(st schemaStatus) string {
	return fmt.Sprintf("%s: schema version %d of %d\n", st.Store, st.Version, st.Latest)
}
