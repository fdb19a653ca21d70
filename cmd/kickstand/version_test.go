package main

import (
	"encoding/json"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
)

// The issue: `version` printed "devel" with no commit and --version was
// unknown. The version line carries what the toolchain stamped: module
// version, VCS revision, whether the tree was modified.
func TestVersionFromBuildInfo(t *testing.T) {
	bi, err := debug.ParseBuildInfo("path\tgithub.com/kickstand/kickstand/cmd/kickstand\n" +
		"mod\tgithub.com/kickstand/kickstand\tv0.0.0-20261202130248-f1c5df7de99f+dirty\t\n" +
		"build\tvcs=git\nbuild\tvcs.revision=f1c5df7de99fbee07d53586a6fa623a8d95c715b\n" +
		"build\tvcs.time=2026-12-02T13:02:48Z\nbuild\tvcs.modified=true\n")
	if err != nil {
		t.Fatal(err)
	}
	bi.GoVersion = "go1.24.1"
	v := versionFrom(bi)
	want := "kickstand v0.0.0-20261202130248-f1c5df7de99f+dirty commit f1c5df7de99fbee07d53586a6fa623a8d95c715b with uncommitted changes (2026-12-02T13:02:48Z), go1.24.1"
	if v.String() != want {
		t.Errorf("got  %s\nwant %s", v, want)
	}
	bare := versionFrom(&debug.BuildInfo{GoVersion: "go1.24.1"})
	if !strings.Contains(bare.String(), "(devel) (no VCS revision") {
		t.Errorf("without VCS stamps: %s", bare)
	}
}

// The real binary: `version`, `--version` and `version -o json` agree with
// what `go version -m` reads from the same file.
func TestVersionCommandMatchesBinary(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "version", "-o", "json").Output()
	if err != nil {
		t.Fatalf("version -o json: %v", err)
	}
	var v versionInfo
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	m, err := exec.Command("go", "version", "-m", bin).Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(m), "\n") {
		f := strings.Fields(l)
		switch {
		case len(f) >= 3 && f[0] == "mod" && f[2] != v.Version:
			t.Errorf("version %q, go version -m says %q", v.Version, f[2])
		case len(f) == 2 && strings.HasPrefix(f[1], "vcs.revision=") && f[1] != "vcs.revision="+v.Revision:
			t.Errorf("revision %q, go version -m says %s", v.Revision, f[1])
		}
	}
	line, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	flag, err := exec.Command(bin, "--version").Output()
	if err != nil {
		t.Fatalf("--version: %v", err)
	}
	if string(line) != string(flag) || string(line) != v.String()+"\n" {
		t.Errorf("version %q, --version %q, want %q", line, flag, v.String())
	}
}
