package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

// strictUsage makes every mistake in how kickstand is called an error that
// exits 2: an unknown flag, a wrong number of arguments, and an unknown
// subcommand of any command (cobra only checks the root's: `host lsit`
// printed help and exited 0, so a script's typo looked like success).
// A command group called bare still prints its help.
func strictUsage(root *cobra.Command) {
	// cobra adds these two when it runs; added now, the walk below covers
	// them (`completion bsh` exited 0).
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "help" {
			c.Run, c.RunE = nil, helpTopic
		}
	}
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return usageErrorf("%s: %v\nRun '%s --help' for usage.", c.CommandPath(), err, c.CommandPath())
	})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.Args = unknownSubcommand
			c.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
		case c.Args != nil:
			check := c.Args
			c.Args = func(c *cobra.Command, args []string) error {
				if err := check(c, args); err != nil {
					return usageErrorf("%s: %v\nUsage: %s", c.CommandPath(), err, c.UseLine())
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func unknownSubcommand(c *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
	if c.SuggestionsMinimumDistance <= 0 {
		c.SuggestionsMinimumDistance = 2
	}
	if s := c.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageErrorf("%s\nRun '%s --help' for usage.", msg, c.CommandPath())
}

// helpTopic is `kickstand help [command]`, which cobra answers for an
// unknown topic with the root's usage and exit 0.
func helpTopic(c *cobra.Command, args []string) error {
	cmd, rest, err := c.Root().Find(args)
	if err != nil || cmd == nil || (len(rest) > 0 && cmd.HasSubCommands()) {
		return usageErrorf("unknown help topic %q\nRun '%s --help' for usage.", strings.Join(args, " "), c.Root().Name())
	}
	return cmd.Help()
}
