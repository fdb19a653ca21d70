package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
)

// newProfileCmd is `kickstand profile`: list profiles, and add, edit and
// remove live ones (the file's are edited in the file).
func newProfileCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "profile", Short: "List profiles; add, edit and remove live ones"}
	var add, edit profileFlags
	addCmd := liveCmd(g, "add NAME --distro DISTRO [flags]", "Add a live profile (checked as the file's profiles are)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, in *server.Instance, args []string) (string, error) {
			p := inventory.Profile{Name: args[0]}
			add.apply(&p)
			if err := in.Install.SaveProfile(cmd.Context(), p, true, install.ByCLI); err != nil {
				return "", err
			}
			return "profile " + p.Name + ": added", nil
		})
	add.bind(addCmd.Flags())
	editCmd := liveCmd(g, "edit PROFILE [flags]", "Change a live profile: only the flags given", cobra.ExactArgs(1),
		func(cmd *cobra.Command, in *server.Instance, args []string) (string, error) {
			p, err := in.Store.Profile(cmd.Context(), args[0])
			if err != nil {
				return "", err
			}
			edit.apply(p)
			if err := in.Install.SaveProfile(cmd.Context(), *p, false, install.ByCLI); err != nil {
				return "", err
			}
			return "profile " + p.Name + ": edited", nil
		})
	edit.bind(editCmd.Flags())
	rmCmd := liveCmd(g, "rm PROFILE", "Remove a live profile no host uses", cobra.ExactArgs(1),
		func(cmd *cobra.Command, in *server.Instance, args []string) (string, error) {
			if err := in.Install.RemoveProfile(cmd.Context(), args[0], install.ByCLI); err != nil {
				return "", err
			}
			return "profile " + args[0] + ": removed", nil
		})
	list := listCmd(g, "List profiles, from the file and live", "NAME\tDISTRO\tLOADER\tKICKSTART\tORIGIN",
		func(ctx context.Context, in *server.Instance) ([]profileRow, error) {
			ps, err := in.Store.Profiles(ctx)
			if err != nil {
				return nil, err
			}
			origins, _, err := in.Store.Origins(ctx)
			if err != nil {
				return nil, err
			}
			rows := make([]profileRow, len(ps))
			for i, p := range ps {
				rows[i] = profileRow{p, origins[p.Name]}
			}
			return rows, nil
		},
		func(p profileRow) string {
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s", p.Name, p.Distro, p.Loader, dash(p.Kickstart), p.Origin)
		})
	cmd.AddCommand(addCmd, editCmd, rmCmd, list)
	return cmd
}

// profileRow is a profile as `profile list` shows it: with who owns it.
type profileRow struct {
	inventory.Profile
	Origin string `json:"origin"`
}
