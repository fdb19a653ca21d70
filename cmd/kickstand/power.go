package main

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/bmc"
	"github.com/kickstand/kickstand/internal/install"
)

// addPowerCommands adds the BMC commands to `kickstand host`.
func addPowerCommands(root *cobra.Command, g *globals) {
	var host *cobra.Command
	for _, c := range root.Commands() {
		if c.Name() == "host" {
			host = c
		}
	}
	if host == nil {
		return
	}
	reinstall := &cobra.Command{
		Use:   "reinstall HOST",
		Short: "Build HOST, set its next boot to PXE once and power cycle it through its BMC",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			in, err := openLive(ctx, g)
			if err != nil {
				return err
			}
			defer in.Close()
			h, err := in.Install.Reinstall(ctx, args[0], install.ByCLI)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s; next boot PXE, power cycled through %s\n", h.Name, h.State, h.BMC.Address)
			return nil
		},
	}
	power := &cobra.Command{
		Use:   "power HOST {status|on|off|cycle}",
		Short: "Read or change HOST's power through its BMC (no state change: see reinstall)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), time.Minute)
			defer cancel()
			in, err := openLive(ctx, g)
			if err != nil {
				return err
			}
			defer in.Close()
			h, err := in.Store.Host(ctx, args[0])
			if err != nil {
				return err
			}
			if h.BMC == nil {
				return fmt.Errorf("host %s has no bmc: in the inventory", h.Name)
			}
			m, err := bmc.Open(ctx, h.BMC, in.Config().Path)
			if err != nil {
				return err
			}
			defer m.Close()
			if args[1] != "status" {
				if err := m.Power(ctx, args[1]); err != nil {
					return err
				}
			}
			st, err := m.PowerState(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: power %s\n", h.Name, st)
			return nil
		},
	}
	host.AddCommand(reinstall, power)
}
