package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// originOf is the owner of one row of a spec table, "" if there is none.
func (s *SQL) originOf(ctx context.Context, tx *sql.Tx, table, name string) (string, error) {
	var origin string
	err := tx.QueryRowContext(ctx, s.rebind(`SELECT origin FROM `+table+` WHERE name = ?`), name).Scan(&origin)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return origin, err
}

// taken refuses a host's MAC, UUID or address that another host holds.
func (s *SQL) taken(ctx context.Context, tx *sql.Tx, h inventory.Host) error {
	for _, t := range []struct{ what, q string }{
		{"MAC", `SELECT host FROM host_macs WHERE mac = ? AND host <> ?`},
		{"address", `SELECT host FROM host_addrs WHERE addr = ? AND host <> ?`},
		{"UUID", `SELECT name FROM hosts WHERE uuid = ? AND name <> ?`},
	} {
		vals := map[string][]string{"MAC": h.MACs, "address": lookupAddrs(h), "UUID": {h.UUID}}[t.what]
		for _, v := range vals {
			if v == "" {
				continue
			}
			var other string
			err := tx.QueryRowContext(ctx, s.rebind(t.q), v, h.Name).Scan(&other)
			if err == nil {
				return &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("%s %s is also used by host %s", t.what, v, other)}
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
	}
	return nil
}

// writeLiveHost indexes a live host's MACs and addresses.
func (s *SQL) writeLiveHost(ctx context.Context, tx *sql.Tx, h inventory.Host, existed bool) error {
	if err := s.taken(ctx, tx, h); err != nil {
		return err
	}
	ix := &hostIndexer{s: s, tx: tx, scope: &syncScope{hosts: []any{h.Name}, vals: map[string][]any{}}}
	if err := ix.index(ctx, h, existed); err != nil {
		return err
	}
	return ix.flush(ctx)
}

func (s *SQL) CreateHost(ctx context.Context, h inventory.Host, t store.Transition) (*inventory.HostRecord, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("add host %s: %w", h.Name, err)
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		origin, err := s.originOf(ctx, tx, "hosts", h.Name)
		if err != nil {
			return err
		}
		if err := store.CheckLiveChange(origin, true); err != nil {
			return err
		}
		spec, err := json.Marshal(h)
		if err != nil {
			return err
		}
		var tok any
		var exp int64
		if t.Token != "" {
			tok, exp = t.Token, t.Expires.UnixMilli()
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO hosts (`+newHostCols+`) VALUES (`+params(9)+`)`),
			h.Name, inventory.OriginLive, string(spec), nullable(h.UUID), t.State, h.Netboot, tok, exp, time.Now().UnixMilli()); err != nil {
			return err
		}
		return s.writeLiveHost(ctx, tx, h, false)
	})
	if err != nil {
		return nil, fmt.Errorf("add host %s: %w", h.Name, err)
	}
	return s.Host(ctx, h.Name)
}

func (s *SQL) UpdateHost(ctx context.Context, h inventory.Host) (*inventory.HostRecord, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		origin, err := s.originOf(ctx, tx, "hosts", h.Name)
		if err != nil {
			return err
		}
		if err := store.CheckLiveChange(origin, false); err != nil {
			return err
		}
		spec, err := json.Marshal(h)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.rebind(`UPDATE hosts SET spec = ?, uuid = ?, declared_state = ?, updated_at = ? WHERE name = ?`),
			string(spec), nullable(h.UUID), h.Netboot, time.Now().UnixMilli(), h.Name); err != nil {
			return err
		}
		return s.writeLiveHost(ctx, tx, h, true)
	})
	if err != nil {
		return nil, fmt.Errorf("edit host %s: %w", h.Name, err)
	}
	return s.Host(ctx, h.Name)
}

func (s *SQL) DeleteHost(ctx context.Context, name string) (*inventory.HostRecord, error) {
	var old *inventory.HostRecord
	err := s.tx(ctx, func(tx *sql.Tx) error {
		hs, err := s.hostsWhere(ctx, tx, `WHERE name = ?`, name)
		if err != nil {
			return err
		}
		origin := ""
		if len(hs) == 1 {
			old, origin = &hs[0], hs[0].Origin
		}
		if err := store.CheckLiveChange(origin, false); err != nil {
			return err
		}
		return s.deleteHost(ctx, tx, name)
	})
	if err != nil {
		return nil, fmt.Errorf("remove host %s: %w", name, err)
	}
	return old, nil
}

func (s *SQL) putSpec(ctx context.Context, table, kind, name string, v any, create bool) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		origin, err := s.originOf(ctx, tx, table, name)
		if err != nil {
			return err
		}
		if err := store.CheckLiveChange(origin, create); err != nil {
			return err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		if create {
			_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO `+table+` (name, origin, spec) VALUES (?, ?, ?)`), name, inventory.OriginLive, string(b))
		} else {
			_, err = tx.ExecContext(ctx, s.rebind(`UPDATE `+table+` SET spec = ? WHERE name = ?`), string(b), name)
		}
		return err
	})
	if err != nil {
		verb := map[bool]string{true: "add", false: "edit"}[create]
		return fmt.Errorf("%s %s %s: %w", verb, kind, name, err)
	}
	return nil
}

func (s *SQL) PutProfile(ctx context.Context, p inventory.Profile, create bool) error {
	return s.putSpec(ctx, "profiles", "profile", p.Name, p, create)
}

func (s *SQL) PutDistro(ctx context.Context, d inventory.Distro, create bool) error {
	return s.putSpec(ctx, "distros", "distro", d.Name, d, create)
}

// deleteSpec removes a live profile or distro unless users (the names
// of the objects using it) is not empty.
func (s *SQL) deleteSpec(ctx context.Context, table, kind, name string, users func(tx *sql.Tx) ([]string, string, error)) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		origin, err := s.originOf(ctx, tx, table, name)
		if err != nil {
			return err
		}
		if err := store.CheckLiveChange(origin, false); err != nil {
			return err
		}
		used, what, err := users(tx)
		if err != nil {
			return err
		}
		if len(used) > 0 {
			return &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("%s %s is used by %s %s", kind, name, what, strings.Join(used, ", "))}
		}
		_, err = tx.ExecContext(ctx, s.rebind(`DELETE FROM `+table+` WHERE name = ?`), name)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove %s %s: %w", kind, name, err)
	}
	return nil
}

func (s *SQL) DeleteProfile(ctx context.Context, name string) error {
	return s.deleteSpec(ctx, "profiles", "profile", name, func(tx *sql.Tx) ([]string, string, error) {
		hs, err := s.hostsWhere(ctx, tx, `ORDER BY name`)
		if err != nil {
			return nil, "", err
		}
		var used []string
		for _, h := range hs {
			if h.Profile == name {
				used = append(used, h.Name)
			}
		}
		return used, "host", nil
	})
}

func (s *SQL) DeleteDistro(ctx context.Context, name string) error {
	return s.deleteSpec(ctx, "distros", "distro", name, func(tx *sql.Tx) ([]string, string, error) {
		specs, err := s.specs(ctx, tx, "profiles")
		if err != nil {
			return nil, "", err
		}
		var used []string
		for n, sp := range specs {
			var p inventory.Profile
			if json.Unmarshal([]byte(sp[1]), &p) == nil && p.Distro == name {
				used = append(used, n)
			}
		}
		slices.Sort(used)
		return used, "profile", nil
	})
}

func (s *SQL) Origins(ctx context.Context) (profiles, distros map[string]string, err error) {
	read := func(table string) (map[string]string, error) {
		specs, err := s.specs(ctx, s.db, table)
		if err != nil {
			return nil, err
		}
		out := make(map[string]string, len(specs))
		for n, sp := range specs {
			out[n] = sp[0]
		}
		return out, nil
	}
	if profiles, err = read("profiles"); err != nil {
		return nil, nil, err
	}
	distros, err = read("distros")
	return profiles, distros, err
}

// liveRefs refuses a sync that removed a profile a live host uses, or a
// distro a live profile uses: the file's own objects were checked by the
// file, live ones only here. Only a sync that removed one reads anything.
func (s *SQL) liveRefs(ctx context.Context, tx *sql.Tx, removed []string) error {
	gone := map[string]map[string]bool{"profile": {}, "distro": {}}
	for _, r := range removed {
		kind, name, _ := strings.Cut(r, " ")
		if m, ok := gone[kind]; ok {
			m[name] = true
		}
	}
	for _, c := range []struct{ kind, user, q string }{
		{"profile", "host", `SELECT name, spec FROM hosts WHERE origin = ?`},
		{"distro", "profile", `SELECT name, spec FROM profiles WHERE origin = ?`},
	} {
		if len(gone[c.kind]) == 0 {
			continue
		}
		rows, err := tx.QueryContext(ctx, s.rebind(c.q), inventory.OriginLive)
		if err != nil {
			return err
		}
		var users []string
		for rows.Next() {
			var name, spec string
			var ref struct {
				Profile string `json:"profile"`
				Distro  string `json:"distro"`
			}
			if err := rows.Scan(&name, &spec); err != nil {
				rows.Close()
				return err
			}
			if json.Unmarshal([]byte(spec), &ref) != nil {
				continue
			}
			uses := map[string]string{"profile": ref.Profile, "distro": ref.Distro}[c.kind]
			if gone[c.kind][uses] {
				users = append(users, fmt.Sprintf("%s %s uses %s %s", c.user, name, c.kind, uses))
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		if len(users) > 0 {
			slices.Sort(users)
			return &store.Refused{Sentinel: store.ErrInUse, Msg: fmt.Sprintf("the file no longer declares what live objects use (live %s); change or remove them first, or keep it in the file", strings.Join(users, ", "))}
		}
	}
	return nil
}
