package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kickstand/kickstand/internal/api"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

func runToken(t *testing.T, g *globals, args ...string) (string, string, error) {
	t.Helper()
	cmd := newTokenCmd(g)
	var out, errb bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(context.Background())
	return out.String(), errb.String(), err
}

func TestTokenCommand(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, []byte("server:\n  http: \"127.0.0.1:8080\"\n  data_dir: data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g := &globals{config: cfg, output: "text"}

	out, msg, err := runToken(t, g, "create", "--name", "ci")
	if err != nil {
		t.Fatal(err)
	}
	tok := strings.TrimSpace(out)
	if !strings.HasPrefix(tok, "ksapi_") || strings.Count(out, "\n") != 1 || !strings.Contains(msg, "only this once") {
		t.Fatalf("create printed %q and %q", out, msg)
	}
	if _, _, err := runToken(t, g, "create", "--name", "ci"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("second token named ci: %v", err)
	}
	if _, _, err := runToken(t, g, "create", "--name", "no spaces"); err == nil {
		t.Error("a name with a space was accepted")
	}
	if out, _, err := runToken(t, g, "create"); err != nil || !strings.HasPrefix(strings.TrimSpace(out), "ksapi_") {
		t.Errorf("create without a name: %q, %v", out, err)
	}

	out, _, err = runToken(t, g, "list")
	if err != nil || !strings.Contains(out, "ci ") || !strings.Contains(out, "token-") || strings.Contains(out, tok) {
		t.Errorf("list = %q, %v", out, err)
	}
	g.output = "json"
	out, _, err = runToken(t, g, "list")
	var listed []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 2 || listed[0]["name"] != "ci" || listed[0]["created_at"] == nil || len(listed[0]) != 2 {
		t.Errorf("list -o json = %q, %v", out, err)
	}
	g.output = "text"

	// Only the hash is stored: the secret is nowhere in the data directory.
	files, _ := filepath.Glob(filepath.Join(dir, "data", "*"))
	if len(files) == 0 {
		t.Fatal("no store files")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, []byte(tok)) || bytes.Contains(b, []byte(strings.TrimPrefix(tok, "ksapi_"))) {
			t.Errorf("%s holds the token in clear", f)
		}
	}

	// The API accepts the token, until it is revoked.
	whoami := func() bool {
		st, err := sqlstore.OpenSQLite(context.Background(), filepath.Join(dir, "data"))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		w := httptest.NewRecorder()
		r := httptest.NewRequest("GET", "/api/v1/whoami", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		api.Handler(api.Deps{Store: st}).ServeHTTP(w, r)
		var v struct {
			Authenticated bool
			Token         string
		}
		json.Unmarshal(w.Body.Bytes(), &v)
		return v.Authenticated && v.Token == "ci"
	}
	if !whoami() {
		t.Error("the API does not accept the created token")
	}
	if out, _, err := runToken(t, g, "revoke", "ci"); err != nil || !strings.Contains(out, "revoked") {
		t.Errorf("revoke = %q, %v", out, err)
	}
	if whoami() {
		t.Error("the API accepts a revoked token")
	}
	if _, _, err := runToken(t, g, "revoke", "ci"); err == nil || !strings.Contains(err.Error(), "no token named ci") {
		t.Errorf("second revoke: %v", err)
	}
}
