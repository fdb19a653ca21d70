package main

import "github.com/spf13/cobra"

// addExtraCommands registers the subcommands that live in their own files.
func addExtraCommands(root *cobra.Command, g *globals) {
	root.AddCommand(newKSCmd(g), newDoctorCmd(g), newImageCmd(g), newDistroCmd(g), newProfileCmd(g), newTokenCmd(g), newVMCmd(g), newTestBootCmd(g), newBenchCmd(g), newInitCmd(g), newManCmd())
}
