package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/api"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

// newTokenCmd manages REST API tokens. The secret is printed once, on
// stdout alone so that scripts can capture it; only its hash is stored.
func newTokenCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Create, list and revoke REST API tokens"}
	open := func(ctx context.Context) (*server.Instance, error) {
		return server.Open(ctx, g.config, server.Options{DataDir: g.data, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	var name string
	create := &cobra.Command{
		Use:   "create [--name NAME]",
		Short: "Make a token for the API's changes (and reads, unless they are open); it is shown once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			if name == "" {
				name = "token-" + now.UTC().Format("20060102-150405")
			}
			if err := api.CheckTokenName(name); err != nil {
				return err
			}
			in, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer in.Close()
			tok := api.NewToken()
			err = in.Store.CreateAPIToken(cmd.Context(), store.APIToken{Name: name, Hash: api.HashToken(tok), CreatedAt: now})
			if errors.Is(err, store.ErrExists) {
				return fmt.Errorf("a token named %s exists: pick another --name, or `kickstand token revoke %s` first", name, name)
			}
			if err != nil {
				return err
			}
			created := struct {
				Name      string    `json:"name"`
				Token     string    `json:"token"`
				CreatedAt time.Time `json:"created_at"`
			}{name, tok, now}
			if err := g.emit(cmd.OutOrStdout(), created, func(w io.Writer) error { _, err := fmt.Fprintln(w, tok); return err }); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "token %s created. It is shown only this once: keep it now. Use it as \"Authorization: Bearer <token>\".\n", name)
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "name to list and revoke the token by (default: token-<UTC time>)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List tokens by name and creation time (the secrets are not kept)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer in.Close()
			toks, err := in.Store.APITokens(cmd.Context())
			if err != nil {
				return err
			}
			if toks == nil {
				toks = []store.APIToken{}
			}
			return g.emit(cmd.OutOrStdout(), toks, func(w io.Writer) error {
				tw := newTable(w)
				fmt.Fprintln(tw, "NAME\tCREATED")
				for _, t := range toks {
					fmt.Fprintf(tw, "%s\t%s\n", t.Name, t.CreatedAt.Format(time.RFC3339))
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Delete a token; requests using it are refused from now on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := open(cmd.Context())
			if err != nil {
				return err
			}
			defer in.Close()
			err = in.Store.RevokeAPIToken(cmd.Context(), args[0])
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("no token named %s (see `kickstand token list`)", args[0])
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s revoked\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
