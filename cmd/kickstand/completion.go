package main

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// completeFunc is cobra's completion callback.
type completeFunc func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective)

// addCompletions makes shell completion (`kickstand completion bash|zsh|
// fish`) offer host, profile and distro names from the inventory and the
// live store, wherever a command's usage line names a HOST, PROFILE or
// DISTRO argument or it has a --host, --profile or --distro flag, and the
// choices a usage line spells out ({install|local|menu}). Reading the
// usage lines means a new command completes without code of its own.
func addCompletions(root *cobra.Command, g *globals) {
	kinds := map[string]completeFunc{
		"HOST": g.completeFrom(func(ctx context.Context, s store.Store) ([]string, error) {
			hs, err := s.Hosts(ctx)
			return namesOf(hs, err, func(h *inventory.HostRecord) string { return h.Name })
		}),
		"PROFILE": g.completeFrom(func(ctx context.Context, s store.Store) ([]string, error) {
			ps, err := s.Profiles(ctx)
			return namesOf(ps, err, func(p *inventory.Profile) string { return p.Name })
		}),
		"DISTRO": g.completeFrom(func(ctx context.Context, s store.Store) ([]string, error) {
			ds, err := s.Distros(ctx)
			return namesOf(ds, err, func(d *inventory.Distro) string { return d.Name })
		}),
	}
	fixed := func(v ...string) completeFunc { return cobra.FixedCompletions(v, cobra.ShellCompDirectiveNoFileComp) }
	root.RegisterFlagCompletionFunc("output", fixed(formatTable, formatJSON, formatYAML))
	root.RegisterFlagCompletionFunc("log-format", fixed("text", "json"))
	root.RegisterFlagCompletionFunc("log-level", fixed("debug", "info", "warn", "error"))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for flag, kind := range map[string]string{"host": "HOST", "profile": "PROFILE", "distro": "DISTRO"} {
			if c.LocalNonPersistentFlags().Lookup(flag) != nil {
				c.RegisterFlagCompletionFunc(flag, kinds[kind])
			}
		}
		if c.ValidArgsFunction == nil && c.Runnable() && !c.HasSubCommands() {
			if pos := positionals(c.Use); len(pos) > 0 {
				c.ValidArgsFunction = completeArgs(pos, kinds)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	// `render --explain HOST` has only the host.
	if render, _, err := root.Find([]string{"render"}); err == nil && render != root {
		byUse := render.ValidArgsFunction
		render.ValidArgsFunction = func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
			if explain, _ := cmd.Flags().GetBool("explain"); explain && len(args) == 0 {
				return kinds["HOST"](cmd, args, toComplete)
			}
			return byUse(cmd, args, toComplete)
		}
	}
}

// completeArgs completes the argument at each position as the usage line
// names it: a kind of object, choices, or (anything else) files.
func completeArgs(pos []string, kinds map[string]completeFunc) completeFunc {
	return func(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		i := len(args)
		if i >= len(pos) {
			if !strings.HasSuffix(pos[len(pos)-1], "...") {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			i = len(pos) - 1
		}
		p := strings.TrimSuffix(pos[i], "...")
		if f := kinds[p]; f != nil {
			return f(cmd, args, toComplete)
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			return withPrefix(strings.Split(strings.Trim(p, "{}"), "|"), toComplete), cobra.ShellCompDirectiveNoFileComp
		}
		return nil, cobra.ShellCompDirectiveDefault
	}
}

// positionals are the arguments a usage line names, in order: "set-state
// HOST {install|local|menu}" has HOST and {install|local|menu]. Bracketed
// options and flags with their values are skipped.
func positionals(use string) []string {
	f := strings.Fields(use)
	var out []string
	depth := 0
	flagValue := false // the last token read was a flag's value
	for i := 1; i < len(f); i++ {
		t := f[i]
		if depth > 0 || strings.HasPrefix(t, "[") || strings.HasPrefix(t, "(") {
			// [optional] and (a|b) groups of flags
			depth += strings.Count(t, "[") + strings.Count(t, "(") - strings.Count(t, "]") - strings.Count(t, ")")
			continue
		}
		if strings.HasPrefix(t, "-") {
			if !strings.Contains(t, "=") && i+1 < len(f) && !strings.HasPrefix(f[i+1], "-") && !strings.HasPrefix(f[i+1], "[") {
				i++
			}
			flagValue = true
			continue
		}
		if t == "..." {
			if len(out) > 0 && !flagValue {
				out[len(out)-1] += "..."
			}
			continue
		}
		flagValue = false
		out = append(out, t)
	}
	return out
}

// completeFrom completes names that list reads from the store as the
// read-only commands see it (the file synced in, live objects too); on any
// error, nothing (a completion must never print an error into the user's
// command line).
func (g *globals) completeFrom(list func(context.Context, store.Store) ([]string, error)) completeFunc {
	return func(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
		ctx := cmd.Context()
		in, err := openPreview(ctx, g)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer in.Close()
		names, err := list(ctx, in.Store)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return withPrefix(names, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
}

// withPrefix is the candidates that start with what was typed.
func withPrefix(candidates []string, typed string) []string {
	var out []string
	for _, c := range candidates {
		if strings.HasPrefix(c, typed) {
			out = append(out, c)
		}
	}
	return out
}

// namesOf is the names of a store listing.
func namesOf[T any](items []T, err error, name func(*T) string) ([]string, error) {
	out := make([]string, 0, len(items))
	for i := range items {
		out = append(out, name(&items[i]))
	}
	return out, err
}
