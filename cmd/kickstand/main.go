// Command kickstand takes machines from power-on to an installed OS over the
// network: DHCP, TFTP, HTTP, boot menus and kickstarts from one binary.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

func main() {
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		var ee *kickstart.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.Code) // the command already said why
		}
		fmt.Fprintln(os.Stderr, "kickstand:", err)
		os.Exit(1)
	}
}

// globals are the flags every subcommand shares.
type globals struct {
	config string
	data   string
	store  string
	output string
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "kickstand",
		Short:         "Network installs from power-on to installed OS",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", "/etc/kickstand/kickstand.yaml", "inventory file")
	pf.StringVar(&g.data, "data", "", "data directory (default: the config's server.data_dir)")
	pf.StringVar(&g.store, "store", "", "state store: a postgres:// URL or a directory (default: the config's server.store, else data_dir)")
	pf.StringVarP(&g.output, "output", "o", "text", "output format for listings: text or json")
	root.AddCommand(newServeCmd(g), newRenderCmd(g), newHostCmd(g), newVersionCmd(), newMigrateCmd(g))
	addExtraCommands(root, g)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, rev := "devel", ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
					v = bi.Main.Version
				}
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" {
						rev = " " + s.Value
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "kickstand %s%s\n", v, rev)
			return nil
		},
	}
}

func newMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the store's schema up to date (serve does this on start too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := inventory.Load(g.config)
			if err != nil {
				return err
			}
			spec := server.StoreSpec(cfg, server.Options{DataDir: g.data, Store: g.store})
			s, err := sqlstore.OpenSQL(cmd.Context(), spec)
			if err != nil {
				return fmt.Errorf("migrate %s: %w", store.Redact(spec), err)
			}
			defer s.Close()
			have, want, err := s.SchemaVersion(cmd.Context())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: schema version %d of %d\n", store.Redact(spec), have, want)
			return nil
		},
	}
}

func newServeCmd(g *globals) *cobra.Command {
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the DHCP, TFTP and HTTP servers",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if cpuProfile != "" {
				f, err := os.Create(cpuProfile)
				if err != nil {
					return fmt.Errorf("serve: --cpu-profile: %w", err)
				}
				defer f.Close()
				if err := pprof.StartCPUProfile(f); err != nil {
					return fmt.Errorf("serve: --cpu-profile: %w", err)
				}
				defer pprof.StopCPUProfile()
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, nil))
			in, err := server.Open(ctx, g.config, server.Options{CheckFiles: true, DataDir: g.data, Store: g.store, Log: log})
			if err != nil {
				return err
			}
			defer in.Close()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			go in.Watch(ctx, hup, 2*time.Second)
			return in.Serve(ctx, nil)
		},
	}
	cmd.Flags().StringVar(&cpuProfile, "cpu-profile", "", "write a Go CPU profile of the whole run to this file (for `go tool pprof`)")
	return cmd
}

// openPreview opens the inventory for commands that read it. The live
// store is used when it exists, so previews show real states and tokens;
// otherwise a throwaway in-memory store, so previews never create files.
func openPreview(ctx context.Context, g *globals) (*server.Instance, error) {
	return server.Open(ctx, g.config, server.Options{DataDir: g.data, Store: g.store, IfExists: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
}

func newRenderCmd(g *globals) *cobra.Command {
	var r install.PreviewRequest
	var explain bool
	cmd := &cobra.Command{
		Use:   "render {ipxe|grub|pxelinux|kickstart|cmdline} HOST",
		Short: "Print exactly what the server would send a host",
		Long: "Print exactly what the server would send a host: the same decision and rendering\n" +
			"the server runs, from the facts the host's own request would carry. With --explain,\n" +
			"also say why (which state, syntax and fixes apply); `render --explain HOST` prints only\n" +
			"that. A host that is not installing gets what the server gives it now; --as-build shows\n" +
			"what it would get right after `kickstand host build`.",
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r.Host = args[len(args)-1]
			if len(args) == 2 {
				r.Kind = args[0]
			} else if !explain {
				return fmt.Errorf("render: name what to render: ipxe, grub, pxelinux, kickstart or cmdline")
			}
			ctx := cmd.Context()
			in, err := openPreview(ctx, g)
			if err != nil {
				return err
			}
			defer in.Close()
			p, err := in.Install.Preview(ctx, r)
			out := cmd.OutOrStdout()
			if explain {
				for _, e := range p.Plan.Explain {
					fmt.Fprintln(out, "# "+e)
				}
				if t, err := in.Booter.TargetByName(ctx, r.Host); err == nil {
					for _, c := range boot.Chains(*t, in.Booter.InputsFor(boot.Facts{}, t).Server) {
						fmt.Fprintln(out, "# chain: "+c)
					}
				}
			}
			out.Write(p.Body)
			for _, pr := range p.Problems {
				fmt.Fprintln(cmd.ErrOrStderr(), pr.String())
			}
			if errors.As(err, new(*install.LintError)) {
				return fmt.Errorf("render kickstart %s: the server would not serve this kickstart (503): it fails lint for its release; fix the template or set lint: warn on the profile", r.Host)
			}
			return err
		},
	}
	cmd.Flags().StringVar(&r.Firmware, "firmware", "", "firmware to preview for: bios or uefi")
	cmd.Flags().IntVar(&r.Family, "family", 0, "address family the request arrives on: 4 or 6 (default: IPv4, unless the host's only static address is IPv6)")
	cmd.Flags().BoolVar(&r.AsBuild, "as-build", false, "preview a host that is not installing as it would be after `kickstand host build`")
	cmd.Flags().BoolVar(&explain, "explain", false, "say why the plan is what it is")
	return cmd
}

// hideVars keeps the names of a host's template variables and hides their
// values, which may be password hashes: listings end up in terminals,
// tickets and chat. The kickstart (render kickstart) shows them in place.
func hideVars(v map[string]string) map[string]string {
	if len(v) == 0 {
		return v
	}
	out := make(map[string]string, len(v))
	for k := range v {
		out[k] = "<hidden>"
	}
	return out
}

func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	return e.Encode(v)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
