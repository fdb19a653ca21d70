package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

func TestPositionals(t *testing.T) {
	for use, want := range map[string][]string{
		"set-state HOST {install|local|menu}":                                          {"HOST", "{install|local|menu}"},
		"render {ipxe|grub|pxelinux|kickstart|cmdline} HOST":                           {"{ipxe|grub|pxelinux|kickstart|cmdline}", "HOST"},
		"lint [--release rhel9] [--include-dir DIR] [-o json|yaml] FILE|-...":          {"FILE|-..."},
		"append IMAGE --add DEST=SRCPATH ... --out OUT [--compress gzip|xz|zstd|none]": {"IMAGE"},
		"import --name NAME [--release R] [--arch A] [--link] ISO|DIR":                 {"ISO|DIR"},
		"add NAME --profile PROFILE (--mac MAC|--uuid UUID) [flags]":                   {"NAME"},
		"rm PROFILE...": {"PROFILE..."},
		"list":          nil,
	} {
		if got := positionals(use); !reflect.DeepEqual(got, want) {
			t.Errorf("positionals(%q) = %q, want %q", use, got, want)
		}
	}
}

// complete asks root for completions as the shell scripts do (the hidden
// __complete command) and returns the candidates.
func complete(t *testing.T, root *cobra.Command, args ...string) []string {
	t.Helper()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(append([]string{"__complete"}, args...))
	if err := root.Execute(); err != nil {
		t.Fatalf("__complete %v: %v", args, err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	return lines[:len(lines)-1] // the last is the directive
}

// The issue: completion did not complete host names. Hosts, profiles and
// distros complete wherever a usage line names them or a flag takes them,
// from the inventory; choices spelt out in a usage line complete too.
func TestCompletionNames(t *testing.T) {
	cfg := "../../examples/lab.yaml"
	hosts := []string{"el6.example.com", "el8.example.com"}
	if got := complete(t, newRootCmd(), "render", "kickstart", "--config", cfg, "--data", "-", "el"); !reflect.DeepEqual(got, hosts) {
		t.Errorf("render kickstart el<TAB>: %q", got)
	}
	if got := complete(t, newRootCmd(), "render", "--explain", "--config", cfg, "--data", "-", "el"); !reflect.DeepEqual(got, hosts) {
		t.Errorf("render --explain el<TAB>: %q", got)
	}
	if got := complete(t, newRootCmd(), "host", "show", "--config", cfg, "--data", "-", "new"); !reflect.DeepEqual(got, []string{"newbox.wann.net"}) {
		t.Errorf("host show new<TAB>: %q", got)
	}
	if got := complete(t, newRootCmd(), "host", "set-state", "--config", cfg, "el8.example.com", ""); !reflect.DeepEqual(got, []string{"install", "local", "menu"}) {
		t.Errorf("host set-state HOST <TAB>: %q", got)
	}
	if got := complete(t, newRootCmd(), "render", ""); !reflect.DeepEqual(got, []string{"ipxe", "grub", "pxelinux", "kickstart", "cmdline"}) {
		t.Errorf("render <TAB>: %q", got)
	}
	if got := complete(t, newRootCmd(), "render", "k"); !reflect.DeepEqual(got, []string{"kickstart"}) {
		t.Errorf("render <TAB>: %q", got)
	}
	if got := complete(t, newRootCmd(), "version", "-o", ""); !reflect.DeepEqual(got, []string{"table", "json", "yaml"}) {
		t.Errorf("-o <TAB>: %q", got)
	}

	// The live-object commands: profiles and distros by argument and flag.
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"profile", "rm", "--config", cfg, "el6"}, []string{"el6-pxelinux"}},
		{[]string{"profile", "add", "x", "--config", cfg, "--distro", "centos7"}, []string{"centos7", "centos7.2"}},
		{[]string{"host", "add", "h", "--config", cfg, "--profile", "el7"}, []string{"el7-v6", "el7-xen"}},
		{[]string{"distro", "rm", "--config", cfg, "centos6"}, []string{"centos6"}},
	} {
		if got := complete(t, newRootCmd(), c.args...); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%v<TAB>: %q, want %q", c.args, got, c.want)
		}
	}

	// Any command naming PROFILE or DISTRO, or taking --profile, completes
	// them, with nothing of its own.
	g := &globals{config: cfg, data: "-"}
	root := &cobra.Command{Use: "kickstand"}
	run := func(*cobra.Command, []string) {}
	add := &cobra.Command{Use: "add NAME", Run: run}
	add.Flags().String("profile", "", "")
	root.AddCommand(&cobra.Command{Use: "pair PROFILE DISTRO", Run: run}, add)
	addCompletions(root, g)
	if got := complete(t, root, "pair", "el"); !reflect.DeepEqual(got, []string{"el6-pxelinux", "el7-v6", "el7-xen", "el8-ipxe"}) {
		t.Errorf("pair el<TAB>: %q", got)
	}
	if got := complete(t, root, "pair", "x", "centos7"); !reflect.DeepEqual(got, []string{"centos7", "centos7.2"}) {
		t.Errorf("pair PROFILE centos7<TAB>: %q", got)
	}
	if got := complete(t, root, "add", "h", "--profile", "el7-"); !reflect.DeepEqual(got, []string{"el7-v6", "el7-xen"}) {
		t.Errorf("add --profile el7-<TAB>: %q", got)
	}
}

// The bash script `kickstand completion bash` prints completes host names
// in a real bash with bash-completion.
func TestCompletionBash(t *testing.T) {
	const bc = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(bc); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("needs %s (bash-completion)", bc)
		}
		t.Skipf("needs %s (bash-completion)", bc)
	}
	bin := buildBinary(t)
	script := filepath.Join(t.TempDir(), "kickstand.bash")
	out, err := exec.Command(bin, "completion", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(script, out, 0o644)
	cfg, _ := filepath.Abs("../../examples/lab.yaml")
	sh := `source ` + bc + `; source "$1"
COMP_WORDS=("$2" host timeline --config "$3" --data - el); COMP_CWORD=7
COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
__start_kickstand 2>/dev/null; printf '%s\n' "${COMPREPLY[@]}"`
	got, err := exec.Command("bash", "-c", sh, "bash", script, bin, cfg).Output()
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != "el6.example.com\nel8.example.com\n" {
		t.Errorf("bash completion of host timeline el<TAB>: %q", got)
	}
}
