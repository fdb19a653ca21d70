package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"
)

// newManCmd writes a man page per command (kickstand.1, kickstand-host-
// list.1, ...) with cobra's doc package, from the same flags and help text
// the binary shows, so the pages cannot drift from the code. `make man`
// runs it; packagers install the result.
func newManCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "man --dir DIR",
		Short:  "Write the man pages into DIR",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			root := cmd.Root()
			root.DisableAutoGenTag = true // the same source gives the same pages
			h := &doc.GenManHeader{Title: "KICKSTAND", Section: "1", Source: "kickstand " + buildVersion().Version, Manual: "kickstand manual"}
			if err := doc.GenManTree(root, h, dir); err != nil {
				return fmt.Errorf("man: %w", err)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "man pages written to", dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "man", "directory to write the pages into")
	return cmd
}
