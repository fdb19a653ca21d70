package main

import (
	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/kickstart"
)

// newKSCmd is `kickstand ks`: lint, rewrite and format kickstarts. The
// logic lives in internal/kickstart; lint failures come back as
// *kickstart.ExitError for the root command to turn into an exit status.
func newKSCmd(g *globals) *cobra.Command {
	ks := &cobra.Command{
		Use:   "ks",
		Short: "Lint, rewrite and format kickstart files",
	}

	var lint kickstart.LintCommand
	lintCmd := &cobra.Command{
		Use:   "lint [--release rhel9] [--include-dir DIR] [--allow-missing GLOB] [-o json|yaml] FILE|-...",
		Short: "Check kickstarts like ksvalidator -i for a release (exit 1 on problems)",
		Long: `Check kickstarts like ksvalidator -i for a release (exit 1 on errors).

%include and %ksappend targets are read relative to the file naming them,
then in each --include-dir; a missing one is an error unless it matches an
--allow-missing pattern (for files %pre writes at install time, such as
--allow-missing '/tmp/*'). "-" reads a kickstart from standard input.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			lint.Out = cmd.OutOrStdout()
			lint.Stdin = cmd.InOrStdin()
			if g.structured() {
				lint.Emit = func(r kickstart.LintReport) error {
					return g.emit(lint.Out, r, nil)
				}
			}
			cmd.SilenceUsage = true
			return lint.Run(cmd.Context(), args)
		},
	}
	lintCmd.Flags().StringVar(&lint.Release, "release", kickstart.DefaultRelease, "release to validate against (rhel6..rhel10, rhel7.2, centos7, fedora40, ...)")
	lintCmd.Flags().BoolVar(&lint.AllowDeprecated, "allow-deprecated", false, "report deprecated commands and options as warnings")
	lintCmd.Flags().BoolVar(&lint.Strict, "strict", false, "fail on kickstand's warnings too")
	lintCmd.Flags().BoolVar(&lint.FollowIncludes, "follow-includes", true, "read %include and %ksappend targets (like ksvalidator -i)")
	lintCmd.Flags().StringArrayVar(&lint.IncludeDirs, "include-dir", nil, "also look for relative include targets in DIR (repeatable)")
	lintCmd.Flags().StringArrayVar(&lint.AllowMissing, "allow-missing", nil, "include targets matching GLOB may be missing, e.g. '/tmp/*' written by %pre (repeatable)")

	var rw kickstart.RewriteCommand
	rewriteCmd := &cobra.Command{
		Use:   "rewrite --platform xen|kvm|baremetal [--source url=URL|nfs=server:/dir] [--release R] FILE",
		Short: "Rewrite a kickstart for a platform and install source; prints a unified diff",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rw.Out = cmd.OutOrStdout()
			cmd.SilenceUsage = true
			return rw.Run(cmd.Context(), args[0])
		},
	}
	rewriteCmd.Flags().StringVar(&rw.Platform, "platform", "baremetal", "target platform: xen, kvm or baremetal")
	rewriteCmd.Flags().StringVar(&rw.Source, "source", "", "install source replacing cdrom: url=http://... or nfs=server:/dir")
	rewriteCmd.Flags().StringVar(&rw.Release, "release", "", "target release: commands and options it does not take are dropped (left as comments) or translated, so the result lints clean of release differences")
	rewriteCmd.Flags().BoolVar(&rw.Write, "write", false, "write the result back to FILE instead of printing a diff")

	var f kickstart.FmtCommand
	fmtCmd := &cobra.Command{
		Use:   "fmt FILE",
		Short: "Print a kickstart with normalised whitespace",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.Out = cmd.OutOrStdout()
			cmd.SilenceUsage = true
			return f.Run(cmd.Context(), args[0])
		},
	}
	fmtCmd.Flags().BoolVarP(&f.Write, "write", "w", false, "write the result back to FILE")

	ks.AddCommand(lintCmd, rewriteCmd, fmtCmd)
	return ks
}
