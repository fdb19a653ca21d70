package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/vminstall"
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

	var bad rendered
	structured(t, 1, &bad, "render", "kickstart", "--as-build", "--config", badKickstartConfig(t, "text\npart / --size=big\n"), "--data", "-", "h")
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
	// token create -o json|yaml: the name and the secret (a create runs
	// once per format, so not through structured).
	for _, f := range []string{"json", "yaml"} {
		out, e, code := runCLI(t, nil, "--config", cfg, "-o", f, "token", "create", "--name", "ci-"+f)
		var created struct{ Name, Token string }
		if err := yaml.Unmarshal([]byte(out), &created); code != 0 || err != nil || created.Name != "ci-"+f || !strings.HasPrefix(created.Token, "ksapi_") {
			t.Errorf("token create -o %s: exit %d, %v, %+v\n%s%s", f, code, err, created, out, e)
		}
		runCLI(t, nil, "--config", cfg, "token", "revoke", "ci-"+f)
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

// The issue: `host list -o json` lacked the stage, progress and diagnosis
// the table shows. Every column of the table is in -o json and -o yaml
// (the API's host view, so neither can leak what the other hides); host
// show and host timeline carry the full diagnosis.
func TestHostFormats(t *testing.T) {
	data := labStore(t)
	cfg := "../../examples/lab.yaml"
	ctx := context.Background()
	in, err := server.Open(ctx, cfg, server.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	err = in.Store.AppendEvents(ctx, []store.Event{
		{Host: "el8.example.com", At: now.Add(-2 * time.Second), Kind: "dhcp.ack", Detail: "192.0.2.20", Data: map[string]any{"firmware": "bios"}},
		{Host: "el8.example.com", At: now.Add(-time.Second), Kind: "callback.failed", Detail: "installer reported failure",
			Data: map[string]any{"log_tail": "anaconda: no usable disks\n"}},
	})
	in.Close()
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--config", cfg, "--data", data}

	table, _, code := runCLI(t, nil, append(base, "host", "list")...)
	if code != 0 {
		t.Fatalf("host list: exit %d", code)
	}
	var hosts []struct {
		Name      string   `json:"name"`
		State     string   `json:"state"`
		Profile   string   `json:"profile"`
		MACs      []string `json:"macs"`
		IPv4      string   `json:"ipv4"`
		IPv6      string   `json:"ipv6"`
		Vars      []string `json:"vars"`
		Diagnosis struct {
			Stage    string `json:"stage"`
			Progress int    `json:"progress"`
			Cause    string `json:"cause"`
		} `json:"diagnosis"`
	}
	structured(t, 0, &hosts, append(base, "host", "list")...)
	rows := strings.Split(strings.TrimSpace(table), "\n")[1:]
	if len(hosts) != 4 || len(rows) != 4 {
		t.Fatalf("host list: %d hosts in json, %d rows in the table", len(hosts), len(rows))
	}
	failed := false
	for i, h := range hosts {
		d := h.Diagnosis
		cause := d.Cause
		if cause == "" {
			cause = "-"
		}
		ip4, ip6 := h.IPv4, h.IPv6
		if ip4 == "" {
			ip4 = "-"
		}
		if ip6 == "" {
			ip6 = "-"
		}
		want := []string{h.Name, h.State, h.Profile, strings.Join(h.MACs, ","), ip4, ip6, d.Stage, fmt.Sprintf("%d%%", d.Progress)}
		got := strings.Fields(rows[i])
		if len(got) < len(want) || !reflect.DeepEqual(got[:len(want)], want) || !strings.HasSuffix(rows[i], cause) {
			t.Errorf("host list row %q; json says %q, cause %q", rows[i], want, cause)
		}
		if h.Name == "el8.example.com" {
			failed = d.Stage == "failed" && d.Cause != ""
		}
	}
	if !failed {
		t.Errorf("el8's failure is not in host list -o json: %+v", hosts)
	}

	var show struct {
		Name      string `json:"name"`
		State     string `json:"state"`
		Diagnosis struct {
			Stage   string   `json:"stage"`
			Hint    string   `json:"hint"`
			LogTail []string `json:"log_tail"`
		} `json:"diagnosis"`
	}
	structured(t, 0, &show, append(base, "host", "show", "el8.example.com")...)
	if show.State != "install" || show.Diagnosis.Stage != "failed" || show.Diagnosis.Hint == "" || len(show.Diagnosis.LogTail) != 1 {
		t.Errorf("host show -o json: %+v", show)
	}

	var tl hostTimeline
	structured(t, 0, &tl, append(base, "host", "timeline", "el8.example.com")...)
	table, _, _ = runCLI(t, nil, append(base, "host", "timeline", "el8.example.com")...)
	if tl.Host != "el8.example.com" || len(tl.Events) < 2 || tl.Diagnosis.Stage != "failed" ||
		!strings.Contains(table, "stage: failed") || !strings.Contains(table, "cause: "+tl.Diagnosis.Cause) {
		t.Errorf("host timeline -o json %+v\ntable:\n%s", tl, table)
	}
	for _, e := range tl.Events {
		if !strings.Contains(table, e.Kind) {
			t.Errorf("event %s in json, not in the table", e.Kind)
		}
	}

	var profiles []profileRow
	structured(t, 0, &profiles, append(base, "profile", "list")...)
	if len(profiles) != 4 || profiles[0].Origin == "" || profiles[0].Distro == "" {
		t.Errorf("profile list -o json: %+v", profiles)
	}
	var distros []inventory.Distro
	structured(t, 0, &distros, append(base, "distro", "list")...)
	if len(distros) != 4 || distros[0].Release == "" {
		t.Errorf("distro list -o json: %+v", distros)
	}
}

// test-boot's report (needs root and QEMU to produce; the e2e tests run
// it) prints from one struct in every format: the verdict, stage, notes,
// the sandbox timeline and, on a failure, the console's last lines.
func TestTestBootReportFormats(t *testing.T) {
	res := &vminstall.TestBootResult{Host: "bios1", Pass: false, Verdict: "FAIL: the kernel was never fetched",
		Details: []string{"http.kernel 404"}, Notes: []string{"a note"}, Serial: []string{"iPXE 1.21"},
		Events:  []store.Event{{At: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Kind: "dhcp.ack", Detail: "192.0.2.50"}},
		Elapsed: 1500 * time.Millisecond}
	res.Diagnosis.Stage, res.Diagnosis.Progress = "dhcp", 10
	rep := newTestBootReport(res)
	var table, js, ym bytes.Buffer
	for f, b := range map[string]*bytes.Buffer{formatTable: &table, formatJSON: &js, formatYAML: &ym} {
		if err := (&globals{output: f}).emit(b, rep, rep.writeText); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"sandbox timeline of bios1:", "03:04:05.000  dhcp.ack  192.0.2.50", "stage: dhcp (10%)", "note: a note", "  | iPXE 1.21", "FAIL: the kernel was never fetched\n  http.kernel 404"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
	var back, backY testBootReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	var m any
	if err := yaml.Unmarshal(ym.Bytes(), &m); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(m)
	json.Unmarshal(b, &backY)
	for _, r := range []testBootReport{back, backY} {
		if r.Pass || r.Verdict != res.Verdict || r.Stage != "dhcp" || r.ElapsedMS != 1500 || len(r.Events) != 1 || len(r.Serial) != 1 || r.Notes[0] != "a note" {
			t.Errorf("test-boot report read back: %+v", r)
		}
	}
}

// host build and set-state print one line, or with -o json|yaml the host
// they changed, as host list shows it.
func TestHostChangeFormats(t *testing.T) {
	cfg := writeMinimalConfig(t)
	os.WriteFile(cfg, []byte("server:\n  address_v4: 192.0.2.1\n  data_dir: data\ndistros: [{name: d, release: rhel9, kernel: k, initrd: [i]}]\n"+
		"profiles: [{name: p, distro: d, vars: {rootpw: \"$6$kickstandtest$5MS9oYuEhtNmSVDHCkrJI/DqZnbLIT/8EAaPqkN.4ywAIgaWBmTuZSsEv4Yys3y6iq.mc7wUFaTvVGsO537yn/\"}}]\n"+
		"hosts: [{name: h1, macs: [\"52:54:00:00:00:01\"], profile: p}]\n"), 0o644)
	out, _, code := runCLI(t, nil, "--config", cfg, "host", "build", "h1")
	if code != 0 || !strings.HasPrefix(out, "h1: install (token valid until ") {
		t.Fatalf("host build: exit %d %q", code, out)
	}
	var h struct {
		Name         string    `json:"name"`
		State        string    `json:"state"`
		TokenExpires time.Time `json:"token_expires"`
		Diagnosis    struct {
			Stage string `json:"stage"`
		} `json:"diagnosis"`
	}
	for _, f := range []string{"json", "yaml"} {
		out, _, code := runCLI(t, nil, "--config", cfg, "-o", f, "host", "build", "h1")
		var err error
		if f == "json" {
			err = json.Unmarshal([]byte(out), &h)
		} else {
			var m any
			if err = yaml.Unmarshal([]byte(out), &m); err == nil {
				b, _ := json.Marshal(m)
				err = json.Unmarshal(b, &h)
			}
		}
		if code != 0 || err != nil || h.Name != "h1" || h.State != "install" || h.TokenExpires.Before(time.Now()) || h.Diagnosis.Stage == "" {
			t.Errorf("host build -o %s: exit %d, %v, %+v\n%s", f, code, err, h, out)
		}
	}
	out, _, code = runCLI(t, nil, "--config", cfg, "-o", "json", "host", "set-state", "h1", "local")
	if err := json.Unmarshal([]byte(out), &h); code != 0 || err != nil || h.State != "local" {
		t.Errorf("host set-state -o json: exit %d, %v\n%s", code, err, out)
	}
}

// doctor -o json carries what a running serve reports (its status file):
// listeners, settings waiting for a restart, a refused file; each pending
// restart counts as a problem, as in the text.
func TestDoctorServeStatusFormats(t *testing.T) {
	cfg := writeMinimalConfig(t)
	data := filepath.Join(filepath.Dir(cfg), "data")
	os.MkdirAll(data, 0o755)
	st := server.Status{PID: os.Getpid(), Config: cfg, LoadedAt: time.Now().UTC().Truncate(time.Second),
		Listening:       map[string]string{"http": "[::]:8080"},
		RestartRequired: []server.Pending{{Field: "tftp.max_transfers", Running: "512", InFile: "7"}}}
	b, _ := json.Marshal(st)
	os.WriteFile(filepath.Join(data, "serve-status.json"), b, 0o644)
	table, _, code := runCLI(t, nil, "--config", cfg, "doctor")
	if code != 1 || !strings.Contains(table, "serve: restart required for tftp.max_transfers") {
		t.Fatalf("doctor: exit %d\n%s", code, table)
	}
	var r doctorReport
	structured(t, 1, &r, "--config", cfg, "doctor")
	if !r.Serve.Running || r.Serve.Status == nil || r.Serve.Status.Listening["http"] != "[::]:8080" ||
		len(r.Serve.Status.RestartRequired) != 1 || r.Serve.Status.RestartRequired[0].Field != "tftp.max_transfers" || r.Problems != 1 {
		t.Errorf("doctor -o json serve: %+v", r.Serve)
	}
}
