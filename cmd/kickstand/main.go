// Command kickstand takes machines from power-on to an installed OS over the
// network: DHCP, TFTP, HTTP, boot menus and kickstarts from one binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

func main() {
	os.Exit(runMain(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// runMain is the whole command line, returning the exit status: 0, 1 when the
// work failed, 2 when kickstand was called wrongly, or what a command set
// (ks lint's status, test-boot's verdict).
func runMain(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	if args == nil {
		args = []string{} // cobra would read os.Args
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *kickstart.ExitError
	if errors.As(err, &ee) {
		return ee.Code // the command already said why
	}
	err = missingConfigHint(err, root.PersistentFlags().Lookup("config").Value.String())
	fmt.Fprintln(stderr, "kickstand:", err)
	// cobra's missing-required-flag error has no type of its own.
	if errors.As(err, new(*usageError)) || strings.HasPrefix(err.Error(), "required flag(s)") {
		return 2
	}
	return 1
}

// defaultConfig is where a packaged kickstand looks for its inventory.
const defaultConfig = "/etc/kickstand/kickstand.yaml"

// globals are the flags every subcommand shares.
type globals struct {
	config    string
	data      string
	store     string
	output    string
	logFormat string
	logLevel  string
	level     slog.Level // parsed from logLevel
	levelSet  bool       // --log-level was given
}

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Version:       buildVersion().String(),
		Use:           "kickstand",
		Short:         "Network installs from power-on to installed OS",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			g.levelSet = cmd.Flags().Changed("log-level")
			if err := g.checkLogFlags(); err != nil {
				return err
			}
			if err := g.checkFormat(); err != nil {
				return err
			}
			return g.checkStructured(cmd.CommandPath())
		},
	}
	root.SetVersionTemplate("{{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVarP(&g.config, "config", "c", envOr("KICKSTAND_CONFIG", defaultConfig), "inventory file ($KICKSTAND_CONFIG sets the default)")
	pf.StringVar(&g.data, "data", os.Getenv("KICKSTAND_DATA"), "data directory (default: $KICKSTAND_DATA, else the config's server.data_dir)")
	pf.StringVar(&g.store, "store", "", "state store: a postgres:// URL or a directory (default: the config's server.store, else data_dir)")
	pf.StringVarP(&g.output, "output", "o", formatTable, "output format: table, json or yaml")
	pf.StringVar(&g.logFormat, "log-format", "text", "log format: text (key=value) or json (one object per line)")
	pf.StringVar(&g.logLevel, "log-level", "info", "least severe log level written: debug, info, warn or error (one-shot commands log only when this is given)")
	root.AddCommand(newServeCmd(g), newRenderCmd(g), newHostCmd(g), newVersionCmd(g), newMigrateCmd(g))
	addExtraCommands(root, g)
	strictUsage(root)
	addCompletions(root, g)
	return root
}

// schemaStatus is what migrate prints: the store (its password hidden) and
// its schema version after migrating, of the latest this binary knows.
type schemaStatus struct {
	Store   string `json:"store"`
	Version int    `json:"version"`
	Latest  int    `json:"latest"`
}

func newMigrateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "migrate",
		Short: "Bring the store's schema up to date (serve does this on start too)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd.Context(), g)
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
			st := schemaStatus{Store: store.Redact(spec), Version: have, Latest: want}
			return g.emit(cmd.OutOrStdout(), st, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s: schema version %d of %d\n", st.Store, st.Version, st.Latest)
				return err
			})
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
			in, err := server.Open(ctx, g.config, server.Options{CheckFiles: true, DataDir: g.data, Store: g.store, Log: g.logger(cmd.ErrOrStderr())})
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
// While the file is refused, they use the last good inventory in the
// store, and say so.
func openPreview(ctx context.Context, g *globals) (*server.Instance, error) {
	return lastGood(server.Open(ctx, g.config, server.Options{DataDir: g.data, Store: g.store, IfExists: true, LastGood: true, Log: g.quietLogger(os.Stderr)}))
}

// lastGood warns, on stderr, that an instance works from the store's last
// good inventory because the file is refused.
func lastGood(in *server.Instance, err error) (*server.Instance, error) {
	if err == nil && in.Stale != nil {
		fmt.Fprintf(os.Stderr, "kickstand: warning: %s is refused; using the last good inventory in the store until it is fixed:\n%v\n", in.Path, in.Stale)
	}
	return in, err
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
			lintErr := errors.As(err, new(*install.LintError))
			if err != nil && !lintErr {
				return err
			}
			rv := rendered{Host: r.Host, Kind: r.Kind, Body: string(p.Body), Served: !lintErr,
				Explain: append([]string{}, p.Plan.Explain...), Chains: []string{}, Problems: append([]kickstart.Problem{}, p.Problems...)}
			if t, err := in.Booter.TargetByName(ctx, r.Host); err == nil {
				rv.Chains = boot.Chains(*t, in.Booter.InputsFor(boot.Facts{}, t).Server)
			}
			err = g.emit(cmd.OutOrStdout(), rv, func(out io.Writer) error {
				if explain {
					for _, e := range rv.Explain {
						fmt.Fprintln(out, "# "+e)
					}
					for _, c := range rv.Chains {
						fmt.Fprintln(out, "# chain: "+c)
					}
				}
				_, err := io.WriteString(out, rv.Body)
				for _, pr := range rv.Problems {
					fmt.Fprintln(cmd.ErrOrStderr(), pr.String())
				}
				return err
			})
			if err != nil {
				return err
			}
			if lintErr {
				return fmt.Errorf("render kickstart %s: the server would not serve this kickstart (503): it fails lint for its release; fix the template or set lint: warn on the profile", r.Host)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&r.Firmware, "firmware", "", "firmware to preview for: bios or uefi")
	cmd.Flags().IntVar(&r.Family, "family", 0, "address family the request arrives on: 4 or 6 (default: IPv4, unless the host's only static address is IPv6)")
	cmd.Flags().BoolVar(&r.AsBuild, "as-build", false, "preview a host that is not installing as it would be after `kickstand host build`")
	cmd.Flags().BoolVar(&explain, "explain", false, "say why the plan is what it is")
	return cmd
}

// rendered is `render -o json|yaml`: the body the server would send, and
// what --explain and stderr show beside it in the table form.
type rendered struct {
	Host string `json:"host"`
	Kind string `json:"kind,omitempty"` // empty for `render --explain HOST`
	Body string `json:"body"`
	// Served is false when the server would refuse the body (a kickstart
	// that fails lint for its release: 503).
	Served   bool                `json:"served"`
	Explain  []string            `json:"explain"`
	Chains   []string            `json:"chains"`
	Problems []kickstart.Problem `json:"problems"`
}

// envOr is the environment variable name's value, or def when it is unset
// or empty: a shell or unit file can point every command at one inventory.
func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
