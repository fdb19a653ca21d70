package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

func (s *SQL) AppendEvents(ctx context.Context, evs []store.Event) error {
	if len(evs) == 0 {
		return nil
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.lockEvents(ctx, tx); err != nil {
			return err
		}
		stmt, err := tx.PrepareContext(ctx, s.rebind(`INSERT INTO events (host, at, kind, detail, data) VALUES (?, ?, ?, ?, ?)`))
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, e := range evs {
			data := "{}"
			if len(e.Data) > 0 {
				b, err := json.Marshal(e.Data)
				if err != nil {
					return err
				}
				data = string(b)
			}
			if _, err := stmt.ExecContext(ctx, e.Host, e.At.UnixMilli(), e.Kind, e.Detail, data); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d events: %w", len(evs), s.unavailable(err))
	}
	return nil
}

func (s *SQL) Events(ctx context.Context, host string, afterID int64, limit int) ([]store.Event, error) {
	q := `SELECT id, host, at, kind, detail, data FROM events WHERE id > ?`
	args := []any{afterID}
	if host != "" {
		q += ` AND host = ?`
		args = append(args, host)
	}
	q += ` ORDER BY id`
	if limit > 0 {
		q += fmt.Sprintf(` LIMIT %d`, limit)
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, fmt.Errorf("events of %q: %w", host, err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at int64
		var data string
		if err := rows.Scan(&e.ID, &e.Host, &at, &e.Kind, &e.Detail, &data); err != nil {
			return nil, fmt.Errorf("events of %q: %w", host, err)
		}
		e.At = time.UnixMilli(at)
		if data != "{}" {
			json.Unmarshal([]byte(data), &e.Data)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func (s *SQL) PruneEvents(ctx context.Context, keep int, before time.Time) (int64, error) {
	var n int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM events WHERE at < ?`), before.UnixMilli())
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		if keep <= 0 {
			return nil
		}
		// Per host, drop everything older than its keep-th newest event.
		rows, err := tx.QueryContext(ctx, s.rebind(`SELECT host FROM events GROUP BY host HAVING COUNT(*) > ?`), keep)
		if err != nil {
			return err
		}
		var hosts []string
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return err
			}
			hosts = append(hosts, h)
		}
		rows.Close()
		for _, h := range hosts {
			var cut int64
			if err := tx.QueryRowContext(ctx, s.rebind(`SELECT id FROM events WHERE host = ? ORDER BY id DESC LIMIT 1 OFFSET ?`), h, keep-1).Scan(&cut); err != nil {
				return err
			}
			res, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM events WHERE host = ? AND id < ?`), h, cut)
			if err != nil {
				return err
			}
			m, _ := res.RowsAffected()
			n += m
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}

func (s *SQL) RegisterDistro(ctx context.Context, d inventory.Distro, p *inventory.Profile) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		put := func(table, name string, v any) error {
			var origin string
			err := tx.QueryRowContext(ctx, s.rebind(`SELECT origin FROM `+table+` WHERE name = ?`), name).Scan(&origin)
			switch {
			case err == nil && origin == inventory.OriginFile:
				return fmt.Errorf("%s %s is declared in the config file; rename the import or remove it from the file", table[:len(table)-1], name)
			case err != nil && err != sql.ErrNoRows:
				return err
			}
			b, err := json.Marshal(v)
			if err != nil {
				return err
			}
			if origin != "" {
				_, err = tx.ExecContext(ctx, s.rebind(`UPDATE `+table+` SET spec = ? WHERE name = ?`), string(b), name)
			} else {
				_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO `+table+` (name, origin, spec) VALUES (?, ?, ?)`), name, inventory.OriginLive, string(b))
			}
			return err
		}
		if err := put("distros", d.Name, d); err != nil {
			return err
		}
		if p != nil {
			return put("profiles", p.Name, *p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("register distro %s: %w", d.Name, err)
	}
	return nil
}
