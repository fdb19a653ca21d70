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

const discoveredCols = `mac, spec, host, first_seen, last_seen, reports`

func scanDiscovered(rows *sql.Rows) (store.Discovered, error) {
	var d store.Discovered
	var mac, spec, host string
	var first, last, n int64
	if err := rows.Scan(&mac, &spec, &host, &first, &last, &n); err != nil {
		return d, err
	}
	if err := json.Unmarshal([]byte(spec), &d); err != nil {
		return d, fmt.Errorf("discovered %s: bad stored spec: %w", mac, err)
	}
	d.MAC, d.Host, d.Reports = mac, host, int(n)
	d.FirstSeen, d.LastSeen = time.UnixMilli(first), time.UnixMilli(last)
	return d, nil
}

func (s *SQL) discoveredWhere(ctx context.Context, q querier, where string, args ...any) ([]store.Discovered, error) {
	rows, err := q.QueryContext(ctx, s.rebind(`SELECT `+discoveredCols+` FROM discovered `+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Discovered
	for rows.Next() {
		d, err := scanDiscovered(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

func (s *SQL) ReportDiscovered(ctx context.Context, d store.Discovered, lim store.DiscoveryLimits) (bool, error) {
	mac := inventory.NormalMAC(d.MAC)
	if mac == "" {
		return false, fmt.Errorf("report discovered machine: %q is not a MAC", d.MAC)
	}
	spec, err := json.Marshal(d)
	if err != nil {
		return false, err
	}
	now := d.LastSeen.UnixMilli()
	created := false
	err = s.tx(ctx, func(tx *sql.Tx) error {
		created = false
		old, err := s.discoveredWhere(ctx, tx, `WHERE mac = ?`, mac)
		if err != nil {
			return err
		}
		if len(old) == 1 {
			if old[0].Host != "" { // assigned: the report is history
				_, err = tx.ExecContext(ctx, s.rebind(`UPDATE discovered SET last_seen = ?, reports = reports + 1 WHERE mac = ?`), now, mac)
				return err
			}
			_, err = tx.ExecContext(ctx, s.rebind(`UPDATE discovered SET spec = ?, last_seen = ?, reports = reports + 1 WHERE mac = ?`), string(spec), now, mac)
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM discovered`).Scan(&n); err != nil {
			return err
		}
		if n >= lim.Max {
			res, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM discovered WHERE last_seen < ?`), lim.StaleBefore.UnixMilli())
			if err != nil {
				return err
			}
			gone, _ := res.RowsAffected()
			if n-int(gone) >= lim.Max {
				return store.ErrFull
			}
		}
		created = true
		_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO discovered (`+discoveredCols+`) VALUES (?, ?, '', ?, ?, 1)`), mac, string(spec), now, now)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("report discovered machine %s: %w", mac, err)
	}
	return created, nil
}

func (s *SQL) DiscoveredMachines(ctx context.Context) ([]store.Discovered, error) {
	ds, err := s.discoveredWhere(ctx, s.db, `ORDER BY mac`)
	if err != nil {
		return nil, fmt.Errorf("list discovered machines: %w", err)
	}
	return ds, nil
}

func (s *SQL) DiscoveredMachine(ctx context.Context, mac string) (*store.Discovered, error) {
	ds, err := s.discoveredWhere(ctx, s.db, `WHERE mac = ?`, inventory.NormalMAC(mac))
	if err != nil {
		return nil, fmt.Errorf("discovered machine %s: %w", mac, err)
	}
	if len(ds) == 0 {
		return nil, fmt.Errorf("discovered machine %s: %w", mac, store.ErrNotFound)
	}
	return &ds[0], nil
}

func (s *SQL) AssignDiscovered(ctx context.Context, a store.Assignment) (*inventory.HostRecord, error) {
	h := a.Host
	mac := inventory.NormalMAC(a.MAC)
	if err := a.Transition.Check(); err != nil {
		return nil, fmt.Errorf("assign %s: %w", mac, err)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		ds, err := s.discoveredWhere(ctx, tx, `WHERE mac = ?`, mac)
		switch {
		case err != nil:
			return err
		case len(ds) == 0:
			return fmt.Errorf("no discovered machine has MAC %s: %w", mac, store.ErrNotFound)
		case ds[0].Host != "":
			return fmt.Errorf("machine %s is already assigned to host %s: %w", mac, ds[0].Host, store.ErrExists)
		}
		if err := s.createHost(ctx, tx, h, a.Transition); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.rebind(`UPDATE discovered SET host = ? WHERE mac = ?`), h.Name, mac)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("assign %s to host %s: %w", mac, h.Name, err)
	}
	return s.Host(ctx, h.Name)
}
