package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/bootfiles"
	"github.com/kickstand/kickstand/internal/inventory"
)

// newDoctorCmd checks what serve needs before anyone boots a machine: the
// config, the files it points at, and the loaders firmware will ask for.
func newDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the config, its files and the boot loaders",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			cfg, err := inventory.Load(g.config)
			if err != nil {
				return err
			}
			problems := 0
			for _, w := range cfg.Warnings {
				fmt.Fprintln(out, "warning:", w)
			}
			if err := cfg.CheckFiles(); err != nil {
				fmt.Fprintln(out, err)
				problems++
			} else {
				fmt.Fprintln(out, "config: ok; every kernel, initrd and template is present")
			}
			var dirs []string
			for _, d := range cfg.Server.Loaders {
				dirs = append(dirs, cfg.Abs(d))
			}
			if cfg.Server.Root != "" {
				dirs = append([]string{cfg.Abs(cfg.Server.Root)}, dirs...)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "LOADER\tFOR\tFOUND")
			var missing []string
			for _, l := range bootfiles.Loaders {
				p := bootfiles.FindLoader(l.Name, dirs)
				if p == "" {
					p = "missing: apt-get install " + l.Package
					missing = append(missing, l.Name)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\n", l.Name, l.For, p)
			}
			tw.Flush()
			if problems > 0 {
				return fmt.Errorf("doctor: %d problem(s) found", problems)
			}
			if len(missing) > 0 {
				fmt.Fprintf(out, "%d loader(s) missing; machines whose firmware needs them cannot boot\n", len(missing))
			}
			return nil
		},
	}
}
