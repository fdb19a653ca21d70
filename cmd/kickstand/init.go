package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kickstand/kickstand/internal/render"
)

// sampleHeader and sampleServer are the live part of the config `kickstand
// init` writes: it loads and passes `doctor` as written.
const sampleHeader = `# kickstand inventory, written by kickstand init.
#
# Every key is explained in the README ("The inventory file"). Relative paths
# are relative to this file's directory. Check it with
#   kickstand doctor --config %[1]s
# and serve it with
#   kickstand serve --config %[1]s
# serve re-reads this file when it changes (or on SIGHUP).
`

const sampleServer = `
server:
  http: ":8080"              # listen address; ":8080" is IPv4 and IPv6
  # address_v4: 192.0.2.1    # how clients reach kickstand; default: the address a request arrived on
  # address_v6: "2001:db8::1"
  data_dir: %s   # the state store (SQLite) and imported distros
  templates: templates       # kickstart templates (example.ks); snippets in templates/snippets/
  # store: postgres://kickstand@db/kickstand   # to share state between kickstand servers
`

// sampleObjects is the example distro, profile and host, written commented
// out: the tree and the MAC are placeholders for the operator's own.
const sampleObjects = `
# A distro is an installer tree: kickstand distro import --name rocky9 ISO
# adds one (and a profile of the same name) without editing this file.
distros:
  - name: rocky9
    release: rocky9.4        # decides the kernel command line syntax and kickstart checks
    arch: x86_64
    tree: /srv/rocky/9.4     # served at /distros/rocky9/
    kernel: images/pxeboot/vmlinuz
    initrd: [images/pxeboot/initrd.img]

profiles:
  - name: rocky9-web
    distro: rocky9
    kickstart: example.ks    # in templates/; empty: the built-in default
    kernel_args: console=ttyS0,115200n8

hosts:
  - name: web1.example.com
    macs: ["52:54:00:00:00:01"]
    ipv4: 192.0.2.21/24      # empty: DHCP
    gateway4: 192.0.2.1
    nameservers: [192.0.2.53]
    timezone: Etc/UTC
    profile: rocky9-web
    netboot: install         # install | local | menu
    # How to log in to the installed machine (README, "Logging in"): vars rootpw
    # (a hash from openssl passwd -6), ssh_keys and user, here or in the profile.
    # vars: {rootpw: "$6$..."}
`

const sampleFooter = `
# DHCP, DHCPv6, TFTP and syslog are off until enabled; see the README for
# dhcp:, dhcp6:, tftp: and syslog:.
`

// sampleConfig is the file init writes. Only the server section is live;
// the example objects are commented out so the file loads before any tree
// exists.
func sampleConfig(configPath, dataDir string) string {
	var b strings.Builder
	fmt.Fprintf(&b, sampleHeader, configPath)
	fmt.Fprintf(&b, sampleServer, dataDir)
	b.WriteString("\n# Uncomment and edit: the tree must exist for serve and doctor to accept it.\n")
	b.WriteString(commentOut(sampleObjects))
	b.WriteString(sampleFooter)
	return b.String()
}

// commentOut turns YAML into comments, leaving its comments as they are.
func commentOut(yml string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimPrefix(yml, "\n"), "\n") {
		switch {
		case l == "":
			b.WriteString("\n")
		case strings.HasPrefix(l, "#"):
			b.WriteString(l + "\n")
		default:
			b.WriteString("# " + l + "\n")
		}
	}
	return b.String()
}

// exampleKickstart is templates/example.ks: the built-in default kickstart,
// as a starting point to edit.
func exampleKickstart() (string, error) {
	def, err := render.BuiltinTemplate(render.DefaultKickstart)
	if err != nil {
		return "", err
	}
	return `{{/* Written by kickstand init: the built-in default kickstart, to edit.
Templates are Go text/template with missingkey=error; the variables are listed
in the README ("Kickstart templates"). {{ snippet "name" }} includes
snippets/name; a file there replaces the built-in network, timezone or
callbacks snippet. Check a host's result with: kickstand render kickstart HOST */ -}}
` + def, nil
}

func newInitCmd(g *globals) *cobra.Command {
	var dataDir string
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented sample config and a template directory (never overwrites)",
		Long: "Write a commented sample inventory at --config (default /etc/kickstand/kickstand.yaml)\n" +
			"and a templates/ directory beside it holding example.ks (the built-in default kickstart)\n" +
			"and an empty snippets/. The sample loads and passes `kickstand doctor` as written; its\n" +
			"example distro, profile and host are commented out. Nothing is written if any of the\n" +
			"files already exists.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfgPath := g.config
			dir := filepath.Dir(cfgPath)
			if dataDir == "" {
				dataDir = "data"
				if abs, err := filepath.Abs(dir); err == nil && (abs == "/etc" || strings.HasPrefix(abs, "/etc/")) {
					dataDir = "/var/lib/kickstand"
				}
			}
			ks, err := exampleKickstart()
			if err != nil {
				return fmt.Errorf("init: %w", err)
			}
			files := []struct{ path, body string }{
				{cfgPath, sampleConfig(cfgPath, yamlString(dataDir))},
				{filepath.Join(dir, "templates", "example.ks"), ks},
			}
			for _, f := range files {
				if _, err := os.Lstat(f.path); err == nil {
					return fmt.Errorf("init: %s exists; kickstand init never overwrites (move it away, or pick another --config)", f.path)
				} else if !errors.Is(err, fs.ErrNotExist) {
					return fmt.Errorf("init: %w", err)
				}
			}
			if err := os.MkdirAll(filepath.Join(dir, "templates", "snippets"), 0o755); err != nil {
				return fmt.Errorf("init: %w", err)
			}
			out := cmd.OutOrStdout()
			for _, f := range files {
				if err := writeNew(f.path, f.body); err != nil {
					return fmt.Errorf("init: %w", err)
				}
				fmt.Fprintln(out, "wrote", f.path)
			}
			fmt.Fprintf(out, "next: edit %s, then run kickstand doctor --config %s\n", cfgPath, cfgPath)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", "", "server.data_dir to write (default: /var/lib/kickstand for a config under /etc, else data beside the config)")
	return cmd
}

// writeNew creates path with body, failing if it exists (O_EXCL), so two
// inits racing never overwrite each other either.
func writeNew(path, body string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.WriteString(body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// missingConfigHint adds how to create a config to the error of a command
// that found none at --config: the first thing a new user runs is
// `kickstand serve`, and a bare "no such file" tells them nothing.
func missingConfigHint(err error, config string) error {
	var pe *fs.PathError
	if !errors.As(err, &pe) || !errors.Is(err, fs.ErrNotExist) || filepath.Clean(pe.Path) != filepath.Clean(config) {
		return err
	}
	how := "kickstand init --config " + config
	if config == defaultConfig {
		how = "kickstand init"
	}
	return fmt.Errorf("%w\nno config at %s: `%s` writes a commented sample to start from", err, config, how)
}

// yamlString is s as a YAML scalar, quoted only when it must be.
func yamlString(s string) string {
	b, err := yaml.Marshal(s)
	if err != nil {
		return fmt.Sprintf("%q", s)
	}
	return strings.TrimSuffix(string(b), "\n")
}
