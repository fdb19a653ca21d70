package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/distro"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
)

// newDistroCmd is `kickstand distro`: import install trees from ISO images
// or directories, and list the distros kickstand knows. The work is in
// internal/distro.
func newDistroCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "distro", Short: "Import install trees and list distros"}

	var req distro.Request
	imp := &cobra.Command{
		Use:   "import --name NAME [--release R] [--arch A] [--link] ISO|DIR",
		Short: "Copy an ISO image or directory tree into the data directory and register it",
		Long: "Copy an ISO image (read in place, no mount) or a directory tree into\n" +
			"<data_dir>/distros/NAME, verify the checksums its .treeinfo gives, and register a\n" +
			"distro and a default profile, both named NAME. An interrupted import resumes when\n" +
			"the same command is run again.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req.Source = args[0]
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(io.Discard, nil))
			// Opened before anything else: the file may use a profile
			// that an earlier import registered, which only the store
			// knows.
			in, err := server.Open(ctx, g.config, server.Options{DataDir: g.data, Log: log})
			if err != nil {
				return err
			}
			defer in.Close()
			data := g.data
			if data == "" {
				data = in.Config().Abs(in.Config().Server.DataDir)
			}
			if data, err = filepath.Abs(data); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			im := &distro.Importer{
				DataDir: data, Store: distro.RegistryFunc(in.Install.Registrar(install.ByCLI)), Config: in.Config(), Log: log,
				Progress: &distro.Progress{W: stderr, Terminal: isTerminal(stderr), Label: "import " + req.Name},
			}
			res, err := im.Import(ctx, req)
			if err != nil {
				return err
			}
			for _, w := range res.Warnings {
				fmt.Fprintln(stderr, "warning:", w)
			}
			return g.emit(cmd.OutOrStdout(), importReport(res), func(w io.Writer) error {
				printImport(w, res)
				return nil
			})
		},
	}
	f := imp.Flags()
	f.StringVar(&req.Name, "name", "", "distro and default profile name, e.g. centos7.2 (required)")
	f.StringVar(&req.Release, "release", "", "release, e.g. rhel9.4 (default: from .treeinfo, else the name)")
	f.StringVar(&req.Arch, "arch", "", "architecture whose kernel to use (default: the tree's)")
	f.BoolVar(&req.Link, "link", false, "hard-link the files of a directory tree instead of copying them")
	imp.MarkFlagRequired("name")

	list := listCmd(g, "List distros, declared and imported", "NAME\tRELEASE\tARCH\tKERNEL\tTREE",
		func(ctx context.Context, in *server.Instance) ([]inventory.Distro, error) {
			return in.Store.Distros(ctx)
		},
		func(d inventory.Distro) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", d.Name, d.Release, dash(d.Arch), d.Kernel, dash(d.Tree))
		})
	rm := liveCmd(g, "rm DISTRO", "Remove a live distro no profile uses (its tree under the data directory is kept)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, in *server.Instance, args []string) (string, error) {
			if err := in.Install.RemoveDistro(cmd.Context(), args[0], install.ByCLI); err != nil {
				return "", err
			}
			return "distro " + args[0] + ": removed", nil
		})
	cmd.AddCommand(imp, list, rm)
	return cmd
}

type importSummary struct {
	Distro   inventory.Distro  `json:"distro"`
	Profile  inventory.Profile `json:"profile"`
	Repos    []string          `json:"repos"`
	Files    int               `json:"files"`
	Bytes    int64             `json:"bytes"`
	Copied   int               `json:"copied"`
	Linked   int               `json:"linked"`
	Resumed  int               `json:"resumed"`
	Verified []string          `json:"verified"`
	Warnings []string          `json:"warnings"`
}

func importReport(r *distro.Result) importSummary {
	return importSummary{
		Distro: r.Distro, Profile: r.Profile, Repos: r.Layout.Repos, Files: r.Files, Bytes: r.Bytes,
		Copied: r.Copied, Linked: r.Linked, Resumed: r.Resumed, Verified: r.Verified, Warnings: r.Warnings,
	}
}

func printImport(w io.Writer, r *distro.Result) {
	d := r.Distro
	fmt.Fprintf(w, "imported %s: %d files, %s (%d copied, %d linked, %d kept from an earlier run), %d checksums verified\n",
		d.Name, r.Files, distro.HumanBytes(r.Bytes), r.Copied, r.Linked, r.Resumed, len(r.Verified))
	tw := newTable(w)
	fmt.Fprintf(tw, "  release\t%s\n  arch\t%s\n  tree\t%s\n  kernel\t%s\n  initrd\t%s\n", d.Release, dash(d.Arch), d.Tree, d.Kernel, strings.Join(d.Initrds, " "))
	fmt.Fprintf(tw, "  stage2\t%s\n  repos\t%s\n  profile\t%s\n", dash(r.Layout.Stage2), dash(strings.Join(r.Layout.Repos, " ")), r.Profile.Name)
	tw.Flush()
}

// isTerminal reports whether w is a terminal, which gets a redrawn progress
// bar instead of progress lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
