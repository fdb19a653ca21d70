package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/api"
	"github.com/kickstand/kickstand/internal/diagnose"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/timeline"
)

func newHostCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "host", Short: "List and change hosts"}
	open := func(ctx context.Context) (*server.Instance, error) {
		return lastGood(server.Open(ctx, g.config, server.Options{DataDir: g.data, Store: g.store, LastGood: true, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}))
	}
	cmd.AddCommand(newHostAddCmd(g), newHostEditCmd(g), newHostRmCmd(g))
	cmd.AddCommand(listCmd(g, "List hosts and their netboot state", "NAME\tSTATE\tPROFILE\tMACS\tIPV4\tIPV6\tSTAGE\tPROGRESS\tCAUSE",
		func(ctx context.Context, in *server.Instance) ([]api.Host, error) {
			hosts, err := in.Store.Hosts(ctx)
			if err != nil {
				return nil, err
			}
			views := make([]api.Host, 0, len(hosts))
			for i := range hosts {
				evs, err := in.Store.Events(ctx, hosts[i].Name, 0, 0)
				if err != nil {
					return nil, err
				}
				views = append(views, api.ViewHost(&hosts[i], evs, time.Now(), false))
			}
			return views, nil
		},
		func(h api.Host) string {
			d := h.Diagnosis.(api.Summary)
			return fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s\t%d%%\t%s", h.Name, h.State, h.Profile, strings.Join(h.MACs, ","), dash(h.IPv4), dash(h.IPv6), d.Stage, d.Progress, dash(d.Cause))
		}), &cobra.Command{
		Use:   "show HOST",
		Short: "Show one host",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := openPreview(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer in.Close()
			h, err := in.Store.Host(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			evs, err := in.Store.Events(cmd.Context(), h.Name, 0, 0)
			if err != nil {
				return err
			}
			v := api.ViewHost(h, evs, time.Now(), true)
			// One host reads best as the object itself: JSON unless
			// -o yaml.
			return g.emit(cmd.OutOrStdout(), v, func(w io.Writer) error { return writeJSON(w, v) })
		},
	}, &cobra.Command{
		Use:   "set-state HOST {install|local|menu}",
		Short: "Change a host's netboot state; the next boot request sees it",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer in.Close()
			h, err := in.Install.SetState(cmd.Context(), args[0], args[1], install.ByCLI)
			if err != nil {
				return err
			}
			return g.emitChanged(cmd, in, h, fmt.Sprintf("%s: %s", h.Name, h.State))
		},
	}, &cobra.Command{
		Use:   "timeline HOST",
		Short: "Show everything that happened to a host, in order",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := openPreview(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer in.Close()
			evs, err := in.Store.Events(cmd.Context(), args[0], 0, 0)
			if err != nil {
				return err
			}
			// Installer text (syslog, uploaded logs) quotes kickstart URLs
			// and password hashes; the API shows it redacted, so does this.
			evs = api.RedactEvents(evs)
			h, err := in.Store.Host(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			d, err := in.Diagnose(cmd.Context(), h)
			if err != nil {
				return err
			}
			if evs == nil {
				evs = []store.Event{}
			}
			tl := hostTimeline{Host: h.Name, Events: evs, Diagnosis: d}
			return g.emit(cmd.OutOrStdout(), tl, tl.writeText)
		},
	}, &cobra.Command{
		Use:   "build HOST",
		Short: "Put a host in install state with a fresh build token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer in.Close()
			h, err := in.Install.Build(cmd.Context(), args[0], install.ByCLI)
			if err != nil {
				return err
			}
			return g.emitChanged(cmd, in, h, fmt.Sprintf("%s: install (token valid until %s)", h.Name, h.TokenExpires.Format(time.RFC3339)))
		},
	})
	return cmd
}

// newHostAddCmd is `host add NAME --profile P --mac M ...`: a live host,
// checked as the file's hosts are. Its flags are hostFlags, so other ways
// of filling a host in (from a discovered machine) add to the same set.
func newHostAddCmd(g *globals) *cobra.Command {
	var f hostFlags
	var fromDiscovered, name string
	cmd := liveCmd(g, "add NAME --profile PROFILE (--mac MAC|--uuid UUID|--from-discovered MAC) [flags]", "Add a live host (checked as the file's hosts are)", cobra.RangeArgs(0, 1),
		func(cmd *cobra.Command, in *server.Instance, args []string) (string, error) {
			switch {
			case len(args) == 1 && name != "" && name != args[0]:
				return "", fmt.Errorf("the host is named twice: %s and --name %s", args[0], name)
			case len(args) == 1:
				name = args[0]
			case name == "":
				return "", errors.New("name the host: host add NAME, or --name NAME")
			}
			h := inventory.Host{Name: name}
			if err := f.apply(&h); err != nil {
				return "", err
			}
			if fromDiscovered != "" {
				// The machine's MAC and UUID come from its report; it
				// is put in install and installs at its next poll.
				rec, err := in.Install.AssignDiscovered(cmd.Context(), fromDiscovered, h, install.ByCLI)
				if err != nil {
					return "", err
				}
				return fmt.Sprintf("%s: added from discovered machine %s (%s); it installs at its next poll", rec.Name, fromDiscovered, rec.State), nil
			}
			rec, err := in.Install.AddHost(cmd.Context(), h, install.ByCLI)
			if err != nil {
				return "", err
			}
			return "", g.emitChanged(cmd, in, rec, fmt.Sprintf("%s: added (%s)", rec.Name, rec.State))
		})
	f.bind(cmd.Flags())
	cmd.Flags().StringVar(&fromDiscovered, "from-discovered", "", "make the discovered machine with this MAC the host (see `kickstand discovered list`); it installs without a reboot")
	cmd.Flags().StringVar(&name, "name", "", "the host's name (instead of the NAME argument)")
	return cmd
}

func newHostEditCmd(g *globals) *cobra.Command {
	var f hostFlags
	cmd := liveCmd(g, "edit HOST [flags]", "Change a live host: only the flags given (a host in the file is edited there)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, in *server.Instance, args []string) (string, error) {
			old, err := in.Store.Host(cmd.Context(), args[0])
			if err != nil {
				return "", err
			}
			h := old.Host
			if err := f.apply(&h); err != nil {
				return "", err
			}
			rec, err := in.Install.EditHost(cmd.Context(), h, install.ByCLI)
			if err != nil {
				return "", err
			}
			return "", g.emitChanged(cmd, in, rec, fmt.Sprintf("%s: edited (%s)", rec.Name, rec.State))
		})
	f.bind(cmd.Flags())
	return cmd
}

func newHostRmCmd(g *globals) *cobra.Command {
	return liveCmd(g, "rm HOST", "Remove a live host (its timeline stays)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, in *server.Instance, args []string) (string, error) {
			if err := in.Install.RemoveHost(cmd.Context(), args[0], install.ByCLI); err != nil {
				return "", err
			}
			return args[0] + ": removed", nil
		})
}

// hostTimeline is `host timeline`: the host's events (each request's
// status and, when refused, why, are in its data) and its diagnosis.
type hostTimeline struct {
	Host      string             `json:"host"`
	Events    []store.Event      `json:"events"`
	Diagnosis diagnose.Diagnosis `json:"diagnosis"`
}

func (tl hostTimeline) writeText(w io.Writer) error {
	tw := newTable(w)
	// STATUS is a request's HTTP status or TFTP outcome, so a refused /ks
	// does not read like a success; DETAIL says why.
	fmt.Fprintln(tw, "TIME\tEVENT\tSTATUS\tDETAIL")
	for _, e := range tl.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", e.At.Format("2006-01-02 15:04:05.000"), e.Kind, dash(timeline.Status(e)), e.Detail)
	}
	tw.Flush()
	d := tl.Diagnosis
	fmt.Fprintf(w, "\nstage: %s (%d%%)", d.Stage, d.Progress)
	if d.Stalled {
		fmt.Fprint(w, ", STALLED")
	}
	fmt.Fprintln(w)
	if d.Cause != "" {
		fmt.Fprintf(w, "cause: %s\nhint: %s\n", d.Cause, d.Hint)
	}
	for _, l := range d.LogTail {
		fmt.Fprintln(w, "  | "+l)
	}
	return nil
}

// emitChanged prints a host a command just changed: the one line saying
// what happened, or with -o json|yaml the host as host list shows it (a
// script gets the new state and token expiry without parsing the line).
func (g *globals) emitChanged(cmd *cobra.Command, in *server.Instance, h *inventory.HostRecord, line string) error {
	if !g.structured() {
		_, err := fmt.Fprintln(cmd.OutOrStdout(), line)
		return err
	}
	evs, err := in.Store.Events(cmd.Context(), h.Name, 0, 0)
	if err != nil {
		return err
	}
	return g.emit(cmd.OutOrStdout(), api.ViewHost(h, evs, time.Now(), false), nil)
}
