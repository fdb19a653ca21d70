package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
)

// newDoctorCmd checks what serve needs before anyone boots a machine: the
// config, the files it points at, and the loaders firmware will ask for.
func newDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the config, its files and the boot loaders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			cfg, err := loadConfig(cmd.Context(), g)
			if err != nil {
				doctorServe(out, server.StatusFile(inventory.ServerOnly(g.config), server.Options{DataDir: g.data, Store: g.store}))
				return err
			}
			problems := doctorServe(out, server.StatusFile(cfg, server.Options{DataDir: g.data, Store: g.store}))
			for _, w := range cfg.Warnings {
				fmt.Fprintln(out, "warning:", w)
			}
			if err := cfg.CheckFiles(); err != nil {
				fmt.Fprintln(out, err)
				problems++
			} else {
				fmt.Fprintln(out, "config: ok; every kernel, initrd and template is present")
			}
			var dirs []string
			for _, d := range cfg.Server.Loaders {
				dirs = append(dirs, cfg.Abs(d))
			}
			if cfg.Server.Root != "" {
				dirs = append([]string{cfg.Abs(cfg.Server.Root)}, dirs...)
			}
			n, err := lintKickstarts(cmd, g)
			if err != nil {
				return err
			}
			problems += n
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LOADER\tFOR\tFOUND")
			var missing []string
			for _, l := range bootfiles.Loaders {
				p := bootfiles.FindLoader(l.Name, dirs)
				if p == "" {
					p = "missing: apt-get install " + l.Package
					missing = append(missing, l.Name)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.For, p)
			}
			tw.Flush()
			doctorChains(out, cfg)
			if problems > 0 {
				return fmt.Errorf("doctor: %d problem(s) found", problems)
			}
			if len(missing) > 0 {
				fmt.Fprintf(out, "%d loader(s) missing; machines whose firmware needs them cannot boot\n", len(missing))
			}
			return nil
		},
	}
}

// doctorChains says, per profile, which chain each kind of firmware gets
// (the served decision, through boot.Chains), and warns when a Secure Boot
// profile would serve an unsigned shim, GRUB or kernel: the firmware, shim
// or GRUB refuses it and the timeline shows only the last file fetched.
func doctorChains(out io.Writer, cfg *inventory.Config) {
	distros := map[string]*inventory.Distro{}
	for i := range cfg.Distros {
		distros[cfg.Distros[i].Name] = &cfg.Distros[i]
	}
	s := boot.Server{Port: cfg.Server.HTTPPort}
	s.V4, _ = netip.ParseAddr(cfg.Server.AddressV4)
	s.V6, _ = netip.ParseAddr(cfg.Server.AddressV6)
	for i := range cfg.Profiles {
		p := &cfg.Profiles[i]
		d := distros[p.Distro]
		if d == nil {
			continue
		}
		fmt.Fprintf(out, "\nprofile %s (distro %s, %s):\n", p.Name, d.Name, orDefault(d.Arch, "any CPU"))
		t := boot.Target{Record: &inventory.HostRecord{Host: inventory.Host{Name: "(a host of " + p.Name + ")"}}, Profile: p, Distro: d}
		for _, c := range boot.Chains(t, s) {
			fmt.Fprintln(out, "  "+c)
		}
		if !p.SecureBoot && p.Loader != inventory.LoaderShim {
			continue
		}
		for _, f := range bootfiles.CheckSecureBoot(cfg, d) {
			switch {
			case f.Err != nil:
				fmt.Fprintf(out, "  warning: Secure Boot %s: %v\n", f.What, f.Err)
			case !f.Signed:
				fmt.Fprintf(out, "  warning: Secure Boot %s %s is not signed: %s\n", f.What, f.Path, refusedBy(f.What))
			default:
				fmt.Fprintf(out, "  Secure Boot %s %s: signed\n", f.What, f.Path)
			}
		}
	}
}

func refusedBy(what string) string {
	switch what {
	case "shim":
		return "the firmware refuses it (Access Denied)"
	case "GRUB":
		return "shim refuses it (Verification failed: (0x1A) Security Violation)"
	}
	return "GRUB refuses it (bad shim signature)"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// lintKickstarts renders every host's kickstart as its install would get it
// and lists those the server would refuse to serve (they fail lint for the
// host's release), with their errors. It returns how many there are.
func lintKickstarts(cmd *cobra.Command, g *globals) (int, error) {
	ctx, out := cmd.Context(), cmd.OutOrStdout()
	in, err := openPreview(ctx, g)
	if err != nil {
		return 0, err
	}
	defer in.Close()
	hosts, err := in.Store.Hosts(ctx)
	if err != nil {
		return 0, err
	}
	failing := 0
	for i, h := range hosts {
		if i > 0 && i%1000 == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "doctor: %d of %d kickstarts linted\n", i, len(hosts))
		}
		_, err := in.Install.Preview(ctx, install.PreviewRequest{Host: h.Name, Kind: "kickstart", AsBuild: true})
		var lerr *install.LintError
		switch {
		case errors.As(err, &lerr):
			failing++
			fmt.Fprintf(out, "kickstart: host %s: fails lint, the server will not serve it:\n", h.Name)
			for _, m := range lerr.Problems {
				fmt.Fprintln(out, "  "+m)
			}
		case err != nil:
			failing++
			fmt.Fprintf(out, "kickstart: host %s: %v\n", h.Name, err)
		}
	}
	if failing == 0 {
		fmt.Fprintf(out, "kickstarts: ok; all %d hosts' kickstarts lint clean for their release\n", len(hosts))
	}
	return failing, nil
}

// doctorServe reports what a kickstand serving from this data directory
// runs with: its listeners, the settings of the file that wait for a
// restart, and a refused file. It returns how many problems it found.
func doctorServe(out io.Writer, path string) int {
	if path == "" {
		return 0
	}
	st, err := server.ReadStatus(path)
	if errors.Is(err, fs.ErrNotExist) {
		fmt.Fprintln(out, "serve: not running from this data directory")
		return 0
	}
	if err != nil {
		fmt.Fprintln(out, "serve:", err)
		return 1
	}
	if err := syscall.Kill(st.PID, 0); errors.Is(err, syscall.ESRCH) {
		fmt.Fprintf(out, "serve: not running (pid %d left %s)\n", st.PID, path)
		return 0
	}
	names := slices.Sorted(maps.Keys(st.Listening))
	var ls []string
	for _, n := range names {
		ls = append(ls, n+" "+st.Listening[n])
	}
	fmt.Fprintf(out, "serve: pid %d, config loaded %s, listening: %s\n", st.PID, st.LoadedAt.Format(time.RFC3339), strings.Join(ls, ", "))
	for _, p := range st.RestartRequired {
		fmt.Fprintf(out, "serve: restart required for %s\n", p)
	}
	if st.Rejected != nil {
		fmt.Fprintf(out, "serve: the file is refused since %s; serving the last good config:\n%s\n", st.Rejected.At.Format(time.RFC3339), st.Rejected.Error)
	}
	n := len(st.RestartRequired)
	if st.Rejected != nil {
		n++
	}
	return n
}
