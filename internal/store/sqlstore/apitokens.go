package sqlstore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

func (s *SQL) CreateAPIToken(ctx context.Context, t store.APIToken) error {
	if t.Name == "" || len(t.Hash) == 0 {
		return fmt.Errorf("create api token: name and hash are required")
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.rebind(`SELECT COUNT(*) FROM api_tokens WHERE name = ?`), t.Name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return store.ErrExists
		}
		_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO api_tokens (name, hash, created_at) VALUES (?, ?, ?)`),
			t.Name, hex.EncodeToString(t.Hash), t.CreatedAt.UnixMilli())
		return err
	})
	if err != nil {
		return fmt.Errorf("create api token %s: %w", t.Name, err)
	}
	return nil
}

func (s *SQL) APITokens(ctx context.Context) ([]store.APIToken, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name, hash, created_at FROM api_tokens ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	defer rows.Close()
	var out []store.APIToken
	for rows.Next() {
		var t store.APIToken
		var h string
		var at int64
		if err := rows.Scan(&t.Name, &h, &at); err != nil {
			return nil, fmt.Errorf("api tokens: %w", err)
		}
		if t.Hash, err = hex.DecodeString(h); err != nil {
			return nil, fmt.Errorf("api token %s: bad stored hash: %w", t.Name, err)
		}
		t.CreatedAt = time.UnixMilli(at)
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("api tokens: %w", err)
	}
	return out, nil
}

func (s *SQL) RevokeAPIToken(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, s.rebind(`DELETE FROM api_tokens WHERE name = ?`), name)
	if err != nil {
		return fmt.Errorf("revoke api token %s: %w", name, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return fmt.Errorf("revoke api token %s: %w", name, store.ErrNotFound)
	}
	return nil
}

// LastEventID lets a live event stream that was given no starting point
// begin at "now" without reading the whole timeline.
func (s *SQL) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("last event id: %w", err)
	}
	return id, nil
}
