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
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
)

// doctorReport is everything doctor checks, in the order it prints it;
// -o json|yaml prints it whole.
type doctorReport struct {
	// Serve is what a kickstand serving from this data directory runs with.
	Serve    serveCheck `json:"serve"`
	Warnings []string   `json:"warnings"`
	// Files is "" when every kernel, initrd and template is present, else
	// what is missing.
	Files      string             `json:"files,omitempty"`
	Hosts      int                `json:"hosts"`
	Kickstarts []kickstartFailure `json:"kickstarts_failing"`
	Loaders    []loaderCheck      `json:"loaders"`
	Profiles   []profileChains    `json:"profiles"`
	Problems   int                `json:"problems"`
}

// kickstartFailure is a host whose kickstart the server would refuse.
type kickstartFailure struct {
	Host     string   `json:"host"`
	Lint     bool     `json:"lint"` // fails lint for its release (else it does not render)
	Problems []string `json:"problems"`
}

type loaderCheck struct {
	Name    string `json:"name"`
	For     string `json:"for"`
	Path    string `json:"path,omitempty"` // "" when missing
	Package string `json:"package"`        // that ships it
}

type profileChains struct {
	Name       string            `json:"name"`
	Distro     string            `json:"distro"`
	Arch       string            `json:"arch"`
	Chains     []string          `json:"chains"`
	SecureBoot []secureBootCheck `json:"secure_boot,omitempty"`
}

type secureBootCheck struct {
	What   string `json:"what"` // shim, GRUB or kernel
	Path   string `json:"path,omitempty"`
	Signed bool   `json:"signed"`
	Error  string `json:"error,omitempty"`
}

// newDoctorCmd checks what serve needs before anyone boots a machine: the
// config, the files it points at, and the loaders firmware will ask for.
func newDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the config, its files and the boot loaders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Context(), g)
			if err != nil {
				sc := doctorServe(server.StatusFile(inventory.ServerOnly(g.config), server.Options{DataDir: g.data, Store: g.store}))
				sc.writeText(cmd.ErrOrStderr())
				return err
			}
			r := doctorReport{Warnings: append([]string{}, cfg.Warnings...), Kickstarts: []kickstartFailure{}, Loaders: []loaderCheck{}, Profiles: []profileChains{}}
			r.Serve = doctorServe(server.StatusFile(cfg, server.Options{DataDir: g.data, Store: g.store}))
			r.Problems += r.Serve.problems()
			if err := cfg.CheckFiles(); err != nil {
				r.Files = err.Error()
				r.Problems++
			}
			if err := lintKickstarts(cmd, g, &r); err != nil {
				return err
			}
			r.Problems += len(r.Kickstarts)
			var dirs []string
			if cfg.Server.Root != "" {
				dirs = append(dirs, cfg.Abs(cfg.Server.Root))
			}
			for _, d := range cfg.Server.Loaders {
				dirs = append(dirs, cfg.Abs(d))
			}
			for _, l := range bootfiles.Loaders {
				r.Loaders = append(r.Loaders, loaderCheck{Name: l.Name, For: l.For, Path: bootfiles.FindLoader(l.Name, dirs), Package: l.Package})
			}
			r.Profiles = doctorChains(cfg)
			if err := g.emit(cmd.OutOrStdout(), r, r.writeText); err != nil {
				return err
			}
			if r.Problems > 0 {
				return fmt.Errorf("doctor: %d problem(s) found", r.Problems)
			}
			return nil
		},
	}
}

func (r *doctorReport) writeText(out io.Writer) error {
	r.Serve.writeText(out)
	for _, w := range r.Warnings {
		fmt.Fprintln(out, "warning:", w)
	}
	if r.Files != "" {
		fmt.Fprintln(out, r.Files)
	} else {
		fmt.Fprintln(out, "config: ok; every kernel, initrd and template is present")
	}
	for _, k := range r.Kickstarts {
		if !k.Lint {
			fmt.Fprintf(out, "kickstart: host %s: %s\n", k.Host, strings.Join(k.Problems, "; "))
			continue
		}
		fmt.Fprintf(out, "kickstart: host %s: fails lint, the server will not serve it:\n", k.Host)
		for _, m := range k.Problems {
			fmt.Fprintln(out, "  "+m)
		}
	}
	if len(r.Kickstarts) == 0 {
		fmt.Fprintf(out, "kickstarts: ok; all %d hosts' kickstarts lint clean for their release\n", r.Hosts)
	}
	tw := newTable(out)
	fmt.Fprintln(tw, "LOADER\tFOR\tFOUND")
	missing := 0
	for _, l := range r.Loaders {
		p := l.Path
		if p == "" {
			p = "missing: apt-get install " + l.Package
			missing++
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.For, p)
	}
	tw.Flush()
	for _, p := range r.Profiles {
		fmt.Fprintf(out, "\nprofile %s (distro %s, %s):\n", p.Name, p.Distro, p.Arch)
		for _, c := range p.Chains {
			fmt.Fprintln(out, "  "+c)
		}
		for _, f := range p.SecureBoot {
			switch {
			case f.Error != "":
				fmt.Fprintf(out, "  warning: Secure Boot %s: %s\n", f.What, f.Error)
			case !f.Signed:
				fmt.Fprintf(out, "  warning: Secure Boot %s %s is not signed: %s\n", f.What, f.Path, refusedBy(f.What))
			default:
				fmt.Fprintf(out, "  Secure Boot %s %s: signed\n", f.What, f.Path)
			}
		}
	}
	if r.Problems == 0 && missing > 0 {
		fmt.Fprintf(out, "%d loader(s) missing; machines whose firmware needs them cannot boot\n", missing)
	}
	return nil
}

// doctorChains says, per profile, which chain each kind of firmware gets
// (the served decision, through boot.Chains), and checks the signatures
// when a Secure Boot profile would serve a shim, GRUB or kernel: the
// firmware, shim or GRUB refuses an unsigned one and the timeline shows
// only the last file fetched.
func doctorChains(cfg *inventory.Config) []profileChains {
	distros := map[string]*inventory.Distro{}
	for i := range cfg.Distros {
		distros[cfg.Distros[i].Name] = &cfg.Distros[i]
	}
	s := boot.Server{Port: cfg.Server.HTTPPort}
	s.V4, _ = netip.ParseAddr(cfg.Server.AddressV4)
	s.V6, _ = netip.ParseAddr(cfg.Server.AddressV6)
	out := []profileChains{}
	for i := range cfg.Profiles {
		p := &cfg.Profiles[i]
		d := distros[p.Distro]
		if d == nil {
			continue
		}
		t := boot.Target{Record: &inventory.HostRecord{Host: inventory.Host{Name: "(a host of " + p.Name + ")"}}, Profile: p, Distro: d}
		pc := profileChains{Name: p.Name, Distro: d.Name, Arch: orDefault(d.Arch, "any CPU"), Chains: boot.Chains(t, s)}
		if p.SecureBoot || p.Loader == inventory.LoaderShim {
			for _, f := range bootfiles.CheckSecureBoot(cfg, d) {
				c := secureBootCheck{What: f.What, Path: f.Path, Signed: f.Signed}
				if f.Err != nil {
					c.Error = f.Err.Error()
				}
				pc.SecureBoot = append(pc.SecureBoot, c)
			}
		}
		out = append(out, pc)
	}
	return out
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
// and adds to r those the server would refuse to serve (they fail lint for
// the host's release, or do not render), with their errors.
func lintKickstarts(cmd *cobra.Command, g *globals, r *doctorReport) error {
	ctx := cmd.Context()
	in, err := openPreview(ctx, g)
	if err != nil {
		return err
	}
	defer in.Close()
	hosts, err := in.Store.Hosts(ctx)
	if err != nil {
		return err
	}
	r.Hosts = len(hosts)
	for i, h := range hosts {
		if i > 0 && i%1000 == 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), "doctor: %d of %d kickstarts linted\n", i, len(hosts))
		}
		_, err := in.Install.Preview(ctx, install.PreviewRequest{Host: h.Name, Kind: "kickstart", AsBuild: true})
		var lerr *install.LintError
		switch {
		case errors.As(err, &lerr):
			r.Kickstarts = append(r.Kickstarts, kickstartFailure{Host: h.Name, Lint: true, Problems: lerr.Problems})
		case err != nil:
			r.Kickstarts = append(r.Kickstarts, kickstartFailure{Host: h.Name, Problems: []string{err.Error()}})
		}
	}
	return nil
}

// serveCheck is what a kickstand serving from this data directory runs
// with: its listeners, the settings of the file that wait for a restart,
// and a refused file.
type serveCheck struct {
	Running bool `json:"running"`
	// Note says why nothing is known of a running server.
	Note   string         `json:"note,omitempty"`
	Status *server.Status `json:"status,omitempty"`
}

func doctorServe(path string) serveCheck {
	if path == "" {
		return serveCheck{Note: "no data directory"}
	}
	st, err := server.ReadStatus(path)
	if errors.Is(err, fs.ErrNotExist) {
		return serveCheck{Note: "not running from this data directory"}
	}
	if err != nil {
		return serveCheck{Note: err.Error()}
	}
	if err := syscall.Kill(st.PID, 0); errors.Is(err, syscall.ESRCH) {
		return serveCheck{Note: fmt.Sprintf("not running (pid %d left %s)", st.PID, path)}
	}
	return serveCheck{Running: true, Status: st}
}

// problems counts the settings waiting for a restart and a refused file.
func (c serveCheck) problems() int {
	if c.Status == nil {
		return 0
	}
	n := len(c.Status.RestartRequired)
	if c.Status.Rejected != nil {
		n++
	}
	return n
}

func (c serveCheck) writeText(out io.Writer) {
	st := c.Status
	if st == nil {
		fmt.Fprintln(out, "serve:", c.Note)
		return
	}
	var ls []string
	for _, n := range slices.Sorted(maps.Keys(st.Listening)) {
		ls = append(ls, n+" "+st.Listening[n])
	}
	fmt.Fprintf(out, "serve: pid %d, config loaded %s, listening: %s\n", st.PID, st.LoadedAt.Format(time.RFC3339), strings.Join(ls, ", "))
	for _, p := range st.RestartRequired {
		fmt.Fprintf(out, "serve: restart required for %s\n", p)
	}
	if st.Rejected != nil {
		fmt.Fprintf(out, "serve: the file is refused since %s; serving the last good config:\n%s\n", st.Rejected.At.Format(time.RFC3339), st.Rejected.Error)
	}
}
