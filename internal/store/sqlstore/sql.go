// Package sqlstore is the store.Store implementation on database/sql, with
// its two drivers: the embedded SQLite store (modernc.org/sqlite, pure Go)
// and the shared PostgreSQL store (pgx). It is apart from package store so
// that consumers of the interface link neither driver; only what opens a
// store (the server, the CLI, tests) imports it.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/groupcommit"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// SQL implements store.Store on database/sql. The SQL is kept to what
// SQLite and PostgreSQL both accept; the only dialect difference, placeholders, is
// handled by rebind.
type SQL struct {
	db       *sql.DB
	dollar   bool // PostgreSQL-style $1 placeholders
	closeFns []func() error
	// pg holds what only the PostgreSQL store needs (postgres.go); nil
	// for SQLite.
	pg *pgDialect
	// states group-commits concurrent host state changes.
	states     groupcommit.Group[*stateReq]
	statesOnce sync.Once
}

func (s *SQL) rebind(q string) string {
	if !s.dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migrate brings the schema up to date inside one transaction per step, so a
// crash mid-migration leaves the previous version intact.
func (s *SQL) migrate(ctx context.Context) error {
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("migrate: store schema version %d is newer than this kickstand (%d): upgrade kickstand", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		err := s.tx(ctx, func(tx *sql.Tx) error {
			for _, stmt := range strings.Split(migrations[i], ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if s.pg != nil {
					stmt = pgDDL(stmt)
				}
				if _, err := tx.ExecContext(ctx, stmt); err != nil {
					return err
				}
			}
			_, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO schema_version (version) VALUES (?)`), i+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("migrate to version %d: %w", i+1, err)
		}
	}
	return nil
}

// tx runs fn in a transaction. On PostgreSQL a transaction that lost a
// race with another kickstand server (serialization failure, deadlock, or
// a unique key the other one inserted first, as when two servers sync the
// same file at start) is run again, a bounded number of times: nothing of
// it was committed, and the retry sees the winner's rows.
func (s *SQL) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	err := s.txOnce(ctx, fn)
	for attempt := 1; attempt < 6 && err != nil && s.pg != nil && pgRetryable(err) && ctx.Err() == nil; attempt++ {
		time.Sleep(time.Duration(attempt*attempt) * time.Millisecond)
		err = s.txOnce(ctx, fn)
	}
	return err
}

func (s *SQL) txOnce(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Close closes the database.
func (s *SQL) Close() error {
	err := s.db.Close()
	for _, f := range s.closeFns {
		err = errors.Join(err, f())
	}
	return err
}

type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

const hostCols = `name, origin, spec, state, declared_state, COALESCE(token, ''), token_expires, updated_at`

func scanHost(rows *sql.Rows) (*inventory.HostRecord, string, error) {
	var r inventory.HostRecord
	var spec, declared string
	var exp, upd int64
	if err := rows.Scan(&r.Name, &r.Origin, &spec, &r.State, &declared, &r.Token, &exp, &upd); err != nil {
		return nil, "", err
	}
	name := r.Name
	if err := json.Unmarshal([]byte(spec), &r.Host); err != nil {
		return nil, "", fmt.Errorf("host %s: bad stored spec: %w", name, err)
	}
	r.Name = name
	if exp != 0 {
		r.TokenExpires = time.UnixMilli(exp)
	}
	r.UpdatedAt = time.UnixMilli(upd)
	return &r, declared, nil
}

func (s *SQL) hostsWhere(ctx context.Context, q querier, where string, args ...any) ([]inventory.HostRecord, error) {
	rows, err := q.QueryContext(ctx, s.rebind(`SELECT `+hostCols+` FROM hosts `+where), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []inventory.HostRecord
	for rows.Next() {
		r, _, err := scanHost(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *r)
	}
	return out, rows.Err()
}

func (s *SQL) oneHost(ctx context.Context, what, where string, args ...any) (*inventory.HostRecord, error) {
	hs, err := s.hostsWhere(ctx, s.db, where, args...)
	if err != nil {
		return nil, fmt.Errorf("host by %s: %w", what, err)
	}
	if len(hs) == 0 {
		return nil, fmt.Errorf("host by %s: %w", what, store.ErrNotFound)
	}
	return &hs[0], nil
}

func (s *SQL) Host(ctx context.Context, name string) (*inventory.HostRecord, error) {
	return s.oneHost(ctx, "name "+name, `WHERE name = ?`, name)
}

func (s *SQL) HostByMAC(ctx context.Context, mac string) (*inventory.HostRecord, error) {
	return s.oneHost(ctx, "mac "+mac, `WHERE name = (SELECT host FROM host_macs WHERE mac = ?)`, inventory.NormalMAC(mac))
}

func (s *SQL) HostByUUID(ctx context.Context, uuid string) (*inventory.HostRecord, error) {
	return s.oneHost(ctx, "uuid "+uuid, `WHERE uuid = ?`, inventory.NormalUUID(uuid))
}

func (s *SQL) HostByAddr(ctx context.Context, a netip.Addr) (*inventory.HostRecord, error) {
	return s.oneHost(ctx, "address "+a.String(), `WHERE name = (SELECT host FROM host_addrs WHERE addr = ?)`, a.Unmap().String())
}

func (s *SQL) HostByToken(ctx context.Context, token string) (*inventory.HostRecord, error) {
	if token == "" {
		return nil, fmt.Errorf("host by token: %w", store.ErrNotFound)
	}
	// The token is a secret: it never goes into an error message.
	return s.oneHost(ctx, "token", `WHERE token = ?`, token)
}

func (s *SQL) Hosts(ctx context.Context) ([]inventory.HostRecord, error) {
	hs, err := s.hostsWhere(ctx, s.db, `ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	return hs, nil
}

func (s *SQL) SetHostState(ctx context.Context, name string, t store.Transition) (*inventory.HostRecord, error) {
	if err := t.Check(); err != nil {
		return nil, fmt.Errorf("set state of %s: %w", name, err)
	}
	var tok any
	var exp int64
	if t.Token != "" {
		tok, exp = t.Token, t.Expires.UnixMilli()
	}
	q := `UPDATE hosts SET state = ?, updated_at = ?, token = ?, token_expires = ? WHERE name = ?`
	r := &stateReq{name: name, args: []any{t.State, nil, tok, exp, name}}
	if t.IfToken != "" {
		q += ` AND token = ?`
		r.args = append(r.args, t.IfToken)
	}
	r.q = s.rebind(q)
	s.statesOnce.Do(func() { s.states.Commit = s.commitStates })
	err := s.states.Do(ctx, r)
	n := r.n
	if err != nil {
		return nil, fmt.Errorf("set state of %s: %w", name, s.unavailable(err))
	}
	if n == 0 {
		if _, err := s.Host(ctx, name); err != nil {
			return nil, fmt.Errorf("set state of %s: %w", name, err)
		}
		return nil, fmt.Errorf("set state of %s: the install it was for was superseded: %w", name, store.ErrConflict)
	}
	return s.Host(ctx, name)
}

// stateReq is one SetHostState in a group commit.
type stateReq struct {
	name string
	q    string
	args []any // args[1] is updated_at, set in the transaction
	n    int64 // rows changed
}

// commitStates applies concurrent state changes in one transaction (a
// storm's callbacks were otherwise one commit each, in a row: SQLite has
// one writer). Rows are taken in name order, so two servers' batches do
// not deadlock. updated_at is stamped once the row is ours (locked on
// PostgreSQL; SQLite's transaction holds the write lock): a time taken
// before a wait, for a pool connection or a lock, would commit behind what
// another server following the store (boot.Index.Follow) has already
// looked past, and it would never see the change.
func (s *SQL) commitStates(ctx context.Context, batch []*stateReq) error {
	sort.SliceStable(batch, func(i, j int) bool { return batch[i].name < batch[j].name })
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, r := range batch {
			r.n = 0
			if s.pg != nil {
				var one int
				err := tx.QueryRowContext(ctx, s.rebind(`SELECT 1 FROM hosts WHERE name = ? FOR UPDATE`), r.name).Scan(&one)
				if errors.Is(err, sql.ErrNoRows) {
					continue
				}
				if err != nil {
					return err
				}
			}
			r.args[1] = time.Now().UnixMilli()
			res, err := tx.ExecContext(ctx, r.q, r.args...)
			if err != nil {
				return fmt.Errorf("set state of %s: %w", r.name, err)
			}
			if r.n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *SQL) HostsChangedSince(ctx context.Context, since time.Time) ([]inventory.HostRecord, int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM hosts`).Scan(&n); err != nil {
		return nil, 0, fmt.Errorf("count hosts: %w", err)
	}
	hs, err := s.hostsWhere(ctx, s.db, `WHERE updated_at >= ?`, since.UnixMilli())
	if err != nil {
		return nil, 0, fmt.Errorf("hosts changed since %s: %w", since.Format(time.RFC3339Nano), err)
	}
	return hs, n, nil
}

// specs reads one of the JSON-spec tables into a name-keyed map.
func (s *SQL) specs(ctx context.Context, q querier, table string) (map[string][2]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, origin, spec FROM `+table)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string][2]string{}
	for rows.Next() {
		var n, o, sp string
		if err := rows.Scan(&n, &o, &sp); err != nil {
			return nil, err
		}
		out[n] = [2]string{o, sp}
	}
	return out, rows.Err()
}

func getSpec[T any](ctx context.Context, s *SQL, table, name string) (*T, error) {
	var spec string
	err := s.db.QueryRowContext(ctx, s.rebind(`SELECT spec FROM `+table+` WHERE name = ?`), name).Scan(&spec)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%s %s: %w", strings.TrimSuffix(table, "s"), name, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", strings.TrimSuffix(table, "s"), name, err)
	}
	var v T
	if err := json.Unmarshal([]byte(spec), &v); err != nil {
		return nil, fmt.Errorf("%s %s: bad stored spec: %w", strings.TrimSuffix(table, "s"), name, err)
	}
	return &v, nil
}

func listSpecs[T any](ctx context.Context, s *SQL, table string) ([]T, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT spec FROM `+table+` ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var spec string
		var v T
		if err := rows.Scan(&spec); err != nil {
			return nil, fmt.Errorf("list %s: %w", table, err)
		}
		if err := json.Unmarshal([]byte(spec), &v); err != nil {
			return nil, fmt.Errorf("list %s: bad stored spec: %w", table, err)
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (s *SQL) Profile(ctx context.Context, name string) (*inventory.Profile, error) {
	return getSpec[inventory.Profile](ctx, s, "profiles", name)
}
func (s *SQL) Profiles(ctx context.Context) ([]inventory.Profile, error) {
	return listSpecs[inventory.Profile](ctx, s, "profiles")
}
func (s *SQL) Distro(ctx context.Context, name string) (*inventory.Distro, error) {
	return getSpec[inventory.Distro](ctx, s, "distros", name)
}
func (s *SQL) Distros(ctx context.Context) ([]inventory.Distro, error) {
	return listSpecs[inventory.Distro](ctx, s, "distros")
}

// SyncDeclared applies the ownership rule: objects the file declares are
// owned by the file (their definition is replaced, live copies are taken
// over); file-owned objects the file no longer declares are removed; live
// objects are left alone. A host's netboot state is live: the file's value
// is applied when the host first appears and whenever the file's value
// changes, and otherwise the live state (set by the CLI or API) is kept.
func (s *SQL) SyncDeclared(ctx context.Context, d store.Declared) (store.SyncReport, error) {
	var rep store.SyncReport
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rep = store.SyncReport{}
		if err := syncSpecs(ctx, s, tx, "distros", "distro", d.Distros, func(x inventory.Distro) string { return x.Name }, &rep); err != nil {
			return err
		}
		if err := syncSpecs(ctx, s, tx, "profiles", "profile", d.Profiles, func(x inventory.Profile) string { return x.Name }, &rep); err != nil {
			return err
		}
		if err := s.syncHosts(ctx, tx, d, &rep); err != nil {
			return err
		}
		return s.liveRefs(ctx, tx, rep.Removed)
	})
	if err != nil {
		return store.SyncReport{}, fmt.Errorf("sync inventory: %w", err)
	}
	return rep, nil
}

func syncSpecs[T any](ctx context.Context, s *SQL, tx *sql.Tx, table, kind string, want []T, name func(T) string, rep *store.SyncReport) error {
	have, err := s.specs(ctx, tx, table)
	if err != nil {
		return err
	}
	declared := map[string]bool{}
	for _, x := range want {
		n := name(x)
		declared[n] = true
		b, err := json.Marshal(x)
		if err != nil {
			return err
		}
		old, ok := have[n]
		switch {
		case !ok:
			_, err = tx.ExecContext(ctx, s.rebind(`INSERT INTO `+table+` (name, origin, spec) VALUES (?, ?, ?)`), n, inventory.OriginFile, string(b))
			rep.Added = append(rep.Added, kind+" "+n)
		case old[0] != inventory.OriginFile || !jsonEqual(old[1], string(b)):
			if old[0] != inventory.OriginFile {
				rep.TakenOver = append(rep.TakenOver, kind+" "+n)
			} else {
				rep.Updated = append(rep.Updated, kind+" "+n)
			}
			_, err = tx.ExecContext(ctx, s.rebind(`UPDATE `+table+` SET origin = ?, spec = ? WHERE name = ?`), inventory.OriginFile, string(b), n)
		}
		if err != nil {
			return fmt.Errorf("%s %s: %w", kind, n, err)
		}
	}
	for n, old := range have {
		if old[0] == inventory.OriginFile && !declared[n] {
			if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM `+table+` WHERE name = ?`), n); err != nil {
				return fmt.Errorf("%s %s: %w", kind, n, err)
			}
			rep.Removed = append(rep.Removed, kind+" "+n)
		}
	}
	return nil
}

// storedHost is a host row as stored: the spec is the JSON the last sync
// wrote, so an unchanged host compares equal byte for byte without decoding
// 100,000 specs.
type storedHost struct{ origin, spec, state, declared string }

func (s *SQL) syncHosts(ctx context.Context, tx *sql.Tx, d store.Declared, rep *store.SyncReport) error {
	have := map[string]*storedHost{}
	only, scope := changedScope(d)
	if only != nil && len(only) == 0 {
		return nil
	}
	q, args := `SELECT name, origin, spec, state, declared_state FROM hosts`, []any(nil)
	if only != nil {
		q, args = q+` WHERE name IN (`+params(len(scope.hosts))+`)`, scope.hosts
	}
	rows, err := tx.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return err
	}
	for rows.Next() {
		var n string
		var st storedHost
		if err := rows.Scan(&n, &st.origin, &st.spec, &st.state, &st.declared); err != nil {
			rows.Close()
			return err
		}
		have[n] = &st
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := map[string]bool{}
	for _, h := range d.Hosts {
		want[h.Name] = true
	}
	now := d.Now.UnixMilli()
	// Remove first, so a MAC moved from a removed host to a new one is
	// free. The removed host's state is kept: restored, it resumes it.
	for n, r := range have {
		if r.origin == inventory.OriginFile && !want[n] {
			if err := s.retireHost(ctx, tx, n, r.state, r.declared, now); err != nil {
				return err
			}
			rep.Removed = append(rep.Removed, "host "+n)
			rep.Retired = append(rep.Retired, store.StateChange{Host: n, From: r.state, Why: store.WhyRemoved})
		}
	}
	retired, err := s.retiredHosts(ctx, tx, have, d.Hosts)
	if err != nil {
		return err
	}
	ix := &hostIndexer{s: s, tx: tx, scope: scope}
	for _, h := range d.Hosts {
		if only != nil && !only[h.Name] {
			continue
		}
		spec, err := json.Marshal(h)
		if err != nil {
			return err
		}
		old := have[h.Name]
		newToken := func(state string) (any, int64) {
			if state != inventory.StateInstall || d.NewToken == nil {
				return nil, 0
			}
			return d.NewToken(), d.Now.Add(d.TokenTTL).UnixMilli()
		}
		if old == nil {
			// A new host starts in the file's state, unless it was
			// removed from the file before and the file's value is
			// the one it had then: it resumes its last state.
			state, ch := h.Netboot, store.StateChange{Host: h.Name, To: h.Netboot, Why: store.WhyNewHost}
			if r, ok := retired[h.Name]; ok {
				if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM retired_hosts WHERE name = ?`), h.Name); err != nil {
					return fmt.Errorf("host %s: %w", h.Name, err)
				}
				ch.From = r.state
				if r.declared == h.Netboot {
					state, ch.To, ch.Why = r.state, r.state, store.WhyRestored
				} else {
					ch.Why = store.WhyNetboot
				}
			}
			tok, exp := newToken(state)
			if err := ix.insertHost(ctx, []any{h.Name, inventory.OriginFile, string(spec), nullable(h.UUID), state, h.Netboot, tok, exp, now}); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
			rep.Added = append(rep.Added, "host "+h.Name)
			rep.States = append(rep.States, ch)
			if err := ix.index(ctx, h, false); err != nil {
				return err
			}
			continue
		}
		specChanged := old.spec != string(spec) && !jsonEqual(old.spec, string(spec))
		if !specChanged && old.origin == inventory.OriginFile && old.declared == h.Netboot {
			continue // unchanged: no writes, so a resync of a big file is cheap
		}
		switch {
		case old.origin != inventory.OriginFile:
			rep.TakenOver = append(rep.TakenOver, "host "+h.Name)
		case specChanged:
			rep.Updated = append(rep.Updated, "host "+h.Name)
		}
		_, err = tx.ExecContext(ctx, s.rebind(`UPDATE hosts SET origin = ?, spec = ?, uuid = ?, updated_at = ? WHERE name = ?`),
			inventory.OriginFile, string(spec), nullable(h.UUID), now, h.Name)
		if err == nil && old.declared != h.Netboot {
			// The file's value changed since we last saw it: the
			// newer edit wins over the live state, and the token goes
			// with the state it belongs to.
			tok, exp := newToken(h.Netboot)
			_, err = tx.ExecContext(ctx, s.rebind(`UPDATE hosts SET state = ?, declared_state = ?, updated_at = ?, token = ?, token_expires = ? WHERE name = ?`),
				h.Netboot, h.Netboot, now, tok, exp, h.Name)
			if old.state != h.Netboot || h.Netboot == inventory.StateInstall {
				rep.States = append(rep.States, store.StateChange{Host: h.Name, From: old.state, To: h.Netboot, Why: store.WhyNetboot})
			}
		}
		if err != nil {
			return fmt.Errorf("host %s: %w", h.Name, err)
		}
		if err := ix.index(ctx, h, true); err != nil {
			return err
		}
	}
	return ix.flush(ctx)
}

type retiredHost struct{ state, declared string }

// retiredHosts reads the kept states of the file's hosts that the store
// does not hold, in one query (usually none: nothing is read then).
func (s *SQL) retiredHosts(ctx context.Context, tx *sql.Tx, have map[string]*storedHost, hosts []inventory.Host) (map[string]retiredHost, error) {
	out := map[string]retiredHost{}
	anyNew := false
	for _, h := range hosts {
		if have[h.Name] == nil {
			anyNew = true
			break
		}
	}
	if !anyNew {
		return out, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, state, declared_state FROM retired_hosts`)
	if err != nil {
		return nil, fmt.Errorf("read retired hosts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		var r retiredHost
		if err := rows.Scan(&n, &r.state, &r.declared); err != nil {
			return nil, err
		}
		out[n] = r
	}
	return out, rows.Err()
}

// retireHost removes a host the file no longer declares and keeps its
// state for its return.
func (s *SQL) retireHost(ctx context.Context, tx *sql.Tx, name, state, declared string, now int64) error {
	if _, err := tx.ExecContext(ctx, s.rebind(`DELETE FROM retired_hosts WHERE name = ?`), name); err != nil {
		return fmt.Errorf("retire host %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO retired_hosts (name, state, declared_state, retired_at) VALUES (?, ?, ?, ?)`), name, state, declared, now); err != nil {
		return fmt.Errorf("retire host %s: %w", name, err)
	}
	return s.deleteHost(ctx, tx, name)
}

func (s *SQL) deleteHost(ctx context.Context, tx *sql.Tx, name string) error {
	for _, q := range []string{`DELETE FROM host_macs WHERE host = ?`, `DELETE FROM host_addrs WHERE host = ?`, `DELETE FROM hosts WHERE name = ?`} {
		if _, err := tx.ExecContext(ctx, s.rebind(q), name); err != nil {
			return fmt.Errorf("remove host %s: %w", name, err)
		}
	}
	return nil
}

// hostIndexer writes new hosts and their MAC and address lookup rows in
// multi-row INSERTs, and checks the lookups' uniqueness against one read of
// the tables: the first sync of a 100,000-host file would otherwise run
// seven statements per host, each parsed anew.
type hostIndexer struct {
	s      *SQL
	tx     *sql.Tx
	scope  *syncScope                     // nil: every host is synced
	owners map[string]map[string]string   // table -> value -> host, read on first use
	held   map[string]map[string][]string // table -> host -> its values
	rows   map[string][]any               // table -> flattened rows waiting for flush
}

// newHostCols are the hosts columns a new host is inserted with.
const newHostCols = `name, origin, spec, uuid, state, declared_state, token, token_expires, updated_at`

// insertBatch bounds the rows of one INSERT: modernc SQLite binds each
// parameter by searching the argument list, so binding costs the square of
// the parameters.
const insertBatch = 64

// sqliteBatch bounds the rows of one SQLite INSERT, which takes them as
// one JSON parameter.
const sqliteBatch = 4096

func (x *hostIndexer) insertHost(ctx context.Context, row []any) error {
	return x.add(ctx, "hosts", row)
}

func (x *hostIndexer) add(ctx context.Context, table string, row []any) error {
	if x.rows == nil {
		x.rows = map[string][]any{}
	}
	x.rows[table] = append(x.rows[table], row...)
	batch := insertBatch
	if x.s.pg == nil {
		batch = sqliteBatch
	}
	if len(x.rows[table]) >= batch*len(row) {
		return x.flushTable(ctx, table)
	}
	return nil
}

// insertCols are the columns flushTable writes, and their number.
func insertCols(table string) (string, int) {
	switch table {
	case "hosts":
		return newHostCols, 9
	case "host_macs":
		return "mac, host", 2
	}
	return "addr, host", 2
}

func (x *hostIndexer) flushTable(ctx context.Context, table string) error {
	vals := x.rows[table]
	if len(vals) == 0 {
		return nil
	}
	cols, width := insertCols(table)
	var err error
	if x.s.pg == nil {
		// modernc SQLite parses a statement anew at every execution and
		// binds parameters by a linear search: for a multi-row VALUES list
		// that cost more than inserting the rows. So the rows go in as one
		// JSON parameter, and OR ROLLBACK spares the statement journal (a
		// temporary file) that undoing half a statement would need: a
		// failure fails the whole sync anyway.
		rows := make([][]any, 0, len(vals)/width)
		for i := 0; i < len(vals); i += width {
			rows = append(rows, vals[i:i+width])
		}
		b, jerr := json.Marshal(rows)
		if jerr != nil {
			return jerr
		}
		sel := make([]string, width)
		for i := range sel {
			sel[i] = "value->>" + strconv.Itoa(i)
		}
		_, err = x.tx.ExecContext(ctx, `INSERT OR ROLLBACK INTO `+table+` (`+cols+`) SELECT `+strings.Join(sel, ", ")+` FROM json_each(?)`, string(b))
	} else {
		one := "(" + params(width) + ")"
		q := `INSERT INTO ` + table + ` (` + cols + `) VALUES ` + strings.TrimSuffix(strings.Repeat(one+", ", len(vals)/width), ", ")
		_, err = x.tx.ExecContext(ctx, x.s.rebind(q), vals...)
	}
	if err != nil {
		return fmt.Errorf("insert %d rows into %s: %w", len(vals)/width, table, err)
	}
	x.rows[table] = vals[:0]
	return nil
}

// flush writes what is waiting; hosts first, for the lookups that name them.
func (x *hostIndexer) flush(ctx context.Context) error {
	for _, t := range []string{"hosts", "host_macs", "host_addrs"} {
		if err := x.flushTable(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// index rewrites a host's MAC and address lookup rows, refusing ones
// another host already has. existed says the host may have rows to
// replace.
func (x *hostIndexer) index(ctx context.Context, h inventory.Host, existed bool) error {
	if x.owners == nil {
		x.owners, x.held = map[string]map[string]string{}, map[string]map[string][]string{}
		for _, t := range []struct{ table, col string }{{"host_macs", "mac"}, {"host_addrs", "addr"}} {
			m, held := map[string]string{}, map[string][]string{}
			q, args := `SELECT `+t.col+`, host FROM `+t.table, []any(nil)
			if x.scope != nil {
				// Only the rows the changed hosts hold or want.
				vals := x.scope.vals[t.table]
				q, args = q+` WHERE host IN (`+params(len(x.scope.hosts))+`)`, x.scope.hosts
				if len(vals) > 0 {
					q, args = q+` OR `+t.col+` IN (`+params(len(vals))+`)`, append(slices.Clip(args), vals...)
				}
			}
			rows, err := x.tx.QueryContext(ctx, x.s.rebind(q), args...)
			if err != nil {
				return err
			}
			for rows.Next() {
				var v, host string
				if err := rows.Scan(&v, &host); err != nil {
					rows.Close()
					return err
				}
				m[v] = host
				held[host] = append(held[host], v)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			x.owners[t.table], x.held[t.table] = m, held
		}
	}
	for _, t := range []struct {
		table, col string
		vals       []string
	}{{"host_macs", "mac", h.MACs}, {"host_addrs", "addr", lookupAddrs(h)}} {
		owners := x.owners[t.table]
		if existed {
			if _, err := x.tx.ExecContext(ctx, x.s.rebind(`DELETE FROM `+t.table+` WHERE host = ?`), h.Name); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
			for _, v := range x.held[t.table][h.Name] {
				delete(owners, v)
			}
			delete(x.held[t.table], h.Name)
		}
		for _, v := range t.vals {
			if other, ok := owners[v]; ok {
				return fmt.Errorf("host %s: %s %s is already used by host %s", h.Name, t.col, v, other)
			}
			owners[v] = h.Name
			x.held[t.table][h.Name] = append(x.held[t.table][h.Name], v)
			if err := x.add(ctx, t.table, []any{v, h.Name}); err != nil {
				return fmt.Errorf("host %s: %w", h.Name, err)
			}
		}
	}
	return nil
}

// lookupAddrs are the values of a host's host_addrs rows.
func lookupAddrs(h inventory.Host) []string {
	var addrs []string
	for _, p := range []string{h.IPv4, h.IPv6} {
		if pr, err := netip.ParsePrefix(p); err == nil {
			addrs = append(addrs, pr.Addr().String())
		}
	}
	return addrs
}

// maxScoped bounds a scoped sync's statements' parameters; a larger
// change is synced as a whole.
const maxScoped = 2000

// syncScope is what a sync of store.Declared.Changed reads: those hosts' rows
// and the lookup rows holding the values they declare.
type syncScope struct {
	hosts []any
	vals  map[string][]any // lookup table -> values
}

// changedScope returns the set of hosts to sync and what to read for
// them, or nil and nil to sync every host.
func changedScope(d store.Declared) (map[string]bool, *syncScope) {
	if d.Changed == nil || len(d.Changed) > maxScoped {
		return nil, nil
	}
	only := make(map[string]bool, len(d.Changed))
	sc := &syncScope{vals: map[string][]any{}}
	for _, n := range d.Changed {
		if !only[n] {
			only[n] = true
			sc.hosts = append(sc.hosts, n)
		}
	}
	for _, h := range d.Hosts {
		if !only[h.Name] {
			continue
		}
		for _, m := range h.MACs {
			sc.vals["host_macs"] = append(sc.vals["host_macs"], m)
		}
		for _, a := range lookupAddrs(h) {
			sc.vals["host_addrs"] = append(sc.vals["host_addrs"], a)
		}
	}
	return only, sc
}

// params is n comma-separated placeholders.
func params(n int) string { return strings.TrimSuffix(strings.Repeat("?, ", n), ", ") }

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func jsonEqual(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return a == b
	}
	return reflect.DeepEqual(x, y)
}
