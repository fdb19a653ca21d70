package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/kickstand/kickstand/internal/server"
)

// The values of -o. Every command that prints data takes all three; the
// JSON and YAML forms carry every field the table shows, so a script never
// has to parse the table.
const (
	formatTable = "table"
	formatJSON  = "json"
	formatYAML  = "yaml"
)

// checkFormat rejects an -o value no command understands, before the
// command runs: a typo must not silently fall back to the table. "text",
// the old name of the default, still means the table.
func (g *globals) checkFormat() error {
	switch g.output {
	case "text":
		g.output = formatTable
		return nil
	case formatTable, formatJSON, formatYAML:
		return nil
	}
	if strings.ContainsAny(g.output, "./") {
		// image pack/append/updates build took -o FILE before it became
		// the format everywhere.
		return usageErrorf("-o %q: want table, json or yaml (an output file is --out FILE)", g.output)
	}
	return usageErrorf("-o %q: want table, json or yaml", g.output)
}

// structuredCommands are the commands that print data and so take
// -o json|yaml; any other refuses them (exit 2) instead of printing its
// usual text as if it had understood.
func structuredCommands() []string {
	return []string{
		"version", "migrate", "render", "doctor", "image ls", "ks lint", "test-boot", "bench storm",
		"host list", "host show", "host timeline", "host build", "host set-state", "host add", "host edit",
		"profile list", "distro list", "distro import", "token create", "token list",
		"discovered list",
	}
}

// checkStructured refuses -o json|yaml for a command that prints no data.
func (g *globals) checkStructured(cmdPath string) error {
	if !g.structured() {
		return nil
	}
	name := strings.TrimPrefix(cmdPath, "kickstand ")
	if slices.Contains(structuredCommands(), name) {
		return nil
	}
	return usageErrorf("%s prints no data to format: -o %s is taken by %s", cmdPath, g.output, strings.Join(structuredCommands(), ", "))
}

// emit prints v in the format -o asked for: JSON or YAML from v itself,
// else the table (or text) that table writes. YAML uses the same field
// names, in the same order, as JSON (v's json tags), so the two agree.
func (g *globals) emit(w io.Writer, v any, table func(w io.Writer) error) error {
	switch g.output {
	case formatJSON:
		return writeJSON(w, v)
	case formatYAML:
		return writeYAML(w, v)
	}
	return table(w)
}

// structured reports whether -o asked for JSON or YAML, for commands whose
// text output also goes elsewhere (e.g. problems on stderr).
func (g *globals) structured() bool {
	return g.output == formatJSON || g.output == formatYAML
}

// writeJSON writes indented JSON with <, > and & as themselves: it is
// read in terminals and by jq, never embedded in HTML.
func writeJSON(w io.Writer, v any) error {
	e := json.NewEncoder(w)
	e.SetIndent("", "  ")
	e.SetEscapeHTML(false)
	return e.Encode(v)
}

// writeYAML goes through JSON so the names and omissions are the json
// tags' (yaml.v3 would otherwise lowercase Go field names), and through a
// yaml.Node so the order of fields is kept.
func writeYAML(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	var n yaml.Node
	if err := yaml.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	plain(&n)
	var buf bytes.Buffer
	e := yaml.NewEncoder(&buf)
	e.SetIndent(2)
	if err := e.Encode(&n); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	if err := e.Close(); err != nil {
		return fmt.Errorf("encode yaml: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// plain drops the flow and quoting styles the JSON source gave every node,
// so the encoder writes block YAML and quotes only what needs quoting
// (yaml.v3 still quotes a string that would read back as another type).
func plain(n *yaml.Node) {
	n.Style = 0
	for _, c := range n.Content {
		plain(c)
	}
}

// newTable is the one table layout the CLI uses: columns two spaces apart.
// Call Flush when done.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// usageError is a mistake in how a command was called (unknown command or
// flag, wrong arguments, bad -o): it exits 2, as getopt tools do, so a
// script can tell it from a failure of the work itself (exit 1).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usageErrorf(format string, a ...any) error {
	return &usageError{msg: fmt.Sprintf(format, a...)}
}

// listCmd is a read-only `list`: it opens the inventory as every reading
// command does (so it works while the file is refused), reads its rows and
// prints them as -o asks, each row a line under header in the table form.
func listCmd[T any](g *globals, short, header string, read func(context.Context, *server.Instance) ([]T, error), line func(T) string) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := openPreview(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer in.Close()
			rows, err := read(cmd.Context(), in)
			if err != nil {
				return err
			}
			if rows == nil {
				rows = []T{} // [] in JSON, not null
			}
			return g.emit(cmd.OutOrStdout(), rows, func(w io.Writer) error {
				tw := newTable(w)
				fmt.Fprintln(tw, header)
				for _, r := range rows {
					fmt.Fprintln(tw, line(r))
				}
				return tw.Flush()
			})
		},
	}
}
