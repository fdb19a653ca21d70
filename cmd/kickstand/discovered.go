package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

// newDiscoveredCmd is the waiting room from the command line: the machines
// that reported themselves (menu.unknown: discover) and their assignment.
func newDiscoveredCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "discovered", Short: "List and assign machines that reported themselves from iPXE"}
	list := listCmd(g, "List discovered machines: what their firmware reported, and whether they were assigned",
		"MAC\tPROOF\tADDR\tUUID\tMANUFACTURER\tPRODUCT\tSERIAL\tASSET\tPLATFORM\tLAST SEEN\tHOST",
		func(ctx context.Context, in *server.Instance) ([]store.Discovered, error) {
			return in.Store.DiscoveredMachines(ctx)
		},
		func(d store.Discovered) string {
			host := d.Host
			if host == "" {
				host = "(waiting)"
			}
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s", d.MAC, d.Proof, d.Addr, dash(d.UUID), dash(d.Manufacturer), dash(d.Product),
				dash(d.Serial), dash(d.Asset), dash(d.Platform+"/"+d.BuildArch), d.LastSeen.UTC().Format(time.RFC3339), host)
		})
	var name, profile string
	assign := &cobra.Command{
		Use:   "assign MAC --name NAME --profile PROFILE",
		Short: "Make a discovered machine a host in install; it starts installing at its next poll, without a reboot",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := openLive(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer in.Close()
			h, err := in.Install.AssignDiscovered(cmd.Context(), args[0], inventory.Host{Name: name, Profile: profile}, install.ByCLI)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s (machine %s, profile %s); it installs at its next poll\n", h.Name, h.State, args[0], h.Profile)
			return nil
		},
	}
	assign.Flags().StringVar(&name, "name", "", "the new host's name (required)")
	assign.Flags().StringVar(&profile, "profile", "", "the new host's profile (required)")
	assign.MarkFlagRequired("name")
	assign.MarkFlagRequired("profile")
	cmd.AddCommand(list, assign)
	return cmd
}
