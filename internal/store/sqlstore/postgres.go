package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/kickstand/kickstand/internal/store"
)

// The PostgreSQL store is the same *SQL as SQLite's, on pgx's database/sql
// driver: one implementation of the store.Store contract, one test suite. What
// differs lives here: opening and waiting for the server, DDL translation,
// advisory locks, and classifying errors (a lost race is retried, a server
// that is down is reported as store.ErrUnavailable).

// pgDialect marks a PostgreSQL store.
type pgDialect struct {
	target string // user@host/database, for messages: never the password
}

// Advisory lock keys (pg_advisory_lock's two-int form: class, object), so
// kickstand's locks cannot collide with another application's on the same
// database.
const (
	pgLockClass   = 0x6b73 // "ks"
	pgLockMigrate = 1
	pgLockEvents  = 2
)

// pgOpenAttempts bounds how long OpenPostgres waits for a server that is
// starting (about 15 s in all): a server started beside its database, by
// one systemd target or compose file, must not fail because it won.
const pgOpenAttempts = 10

// OpenPostgres opens the shared store at dsn (postgres://... or key=value),
// waits a bounded time for the server to accept connections, and migrates
// the schema under an advisory lock, so several kickstand servers may start
// at once.
//
// Unless the DSN says otherwise, sessions get lock_timeout=10s (a DHCP
// commit never waits forever behind a stuck peer) and
// idle_in_transaction_session_timeout=60s (a peer that died mid-transaction
// without closing its socket does not hold rows for ever).
func OpenPostgres(ctx context.Context, dsn string) (*SQL, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// The parse error may quote the DSN, password included.
		return nil, errors.New("open postgres store: cannot parse the DSN")
	}
	target := fmt.Sprintf("postgres %s@%s/%s", cfg.User, cfg.Host, cfg.Database)
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 5 * time.Second
	}
	for k, v := range map[string]string{
		"lock_timeout":                        "10s",
		"idle_in_transaction_session_timeout": "60s",
		"application_name":                    "kickstand",
	} {
		if _, set := cfg.RuntimeParams[k]; !set {
			cfg.RuntimeParams[k] = v
		}
	}
	db := stdlib.OpenDB(*cfg)
	// The group commit uses one connection at a time; the rest serve
	// lookups (boot decisions, HTTP). Connections are reopened on demand
	// after a server restart; database/sql drops the dead ones.
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	s := &SQL{db: db, dollar: true, pg: &pgDialect{target: target}}
	if err := s.waitReady(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", target, err)
	}
	if err := s.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", target, err)
	}
	return s, nil
}

// waitReady pings until the server answers, for a bounded time. Only
// "not reachable yet" is waited out; a wrong password or database fails
// at once.
func (s *SQL) waitReady(ctx context.Context) error {
	var err error
	delay := 100 * time.Millisecond
	for attempt := 0; attempt < pgOpenAttempts; attempt++ {
		if err = s.db.PingContext(ctx); err == nil || !pgUnavailable(err) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		case <-time.After(delay):
		}
		delay = min(2*delay, 2*time.Second)
	}
	return fmt.Errorf("%w after %d attempts: %w", store.ErrUnavailable, pgOpenAttempts, err)
}

// pgMigrate runs migrate while holding a session advisory lock: two
// servers starting at once would otherwise both see version N and both
// try to apply N+1 (CREATE TABLE IF NOT EXISTS is not race-free on
// PostgreSQL either). The second one waits, then finds nothing to do.
func (s *SQL) pgMigrate(ctx context.Context) error {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer conn.Close()
	// Wait as long as the other server's migration takes (the session's
	// lock_timeout is for lease commits), bounded by ctx.
	if _, err := conn.ExecContext(ctx, `SET lock_timeout = 0`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1, $2)`, pgLockClass, pgLockMigrate); err != nil {
		return fmt.Errorf("migrate: lock: %w", err)
	}
	defer func() {
		bg := context.WithoutCancel(ctx)
		conn.ExecContext(bg, `SELECT pg_advisory_unlock($1, $2)`, pgLockClass, pgLockMigrate)
		conn.ExecContext(bg, `RESET lock_timeout`)
	}()
	return s.migrate(ctx)
}

// pgDDL translates the migrations, written for SQLite, where PostgreSQL
// means something else by the same words. The shipped migrations keep their
// meaning for SQLite byte for byte; only PostgreSQL sees the translation.
//
//   - "INTEGER PRIMARY KEY" is SQLite's auto-assigned rowid (events.id);
//     PostgreSQL's equivalent is an identity column, and BIGINT because
//     SQLite's rowid is 64-bit.
//   - AUTOINCREMENT (SQLite: never reuse a rowid) is what an identity
//     column does anyway.
//   - BLOB is BYTEA.
func pgDDL(stmt string) string {
	stmt = pgAutoIncrement.ReplaceAllString(stmt, "")
	stmt = pgRowid.ReplaceAllString(stmt, "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
	return pgBlob.ReplaceAllString(stmt, "BYTEA")
}

var (
	pgRowid         = regexp.MustCompile(`(?i)\bINTEGER\s+PRIMARY\s+KEY\b`)
	pgAutoIncrement = regexp.MustCompile(`(?i)\s+AUTOINCREMENT\b`)
	pgBlob          = regexp.MustCompile(`(?i)\bBLOB\b`)
)

// lockEvents makes event ids increase in commit order on PostgreSQL: a
// sequence hands out ids at insert time, so without the lock a batch that
// commits later could hold lower ids than one a reader has already paged
// past (Events(afterID)), and that reader would never see it. Events are
// appended in batches, so the lock is taken rarely.
func (s *SQL) lockEvents(ctx context.Context, tx *sql.Tx) error {
	if s.pg == nil {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, pgLockClass, pgLockEvents)
	return err
}

// pgRetryable reports whether a transaction failed only because a
// concurrent one won a race, so running it again is the fix:
// serialization failure, deadlock, a unique key inserted first by another
// server, or a lock wait that timed out.
func pgRetryable(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "40001", "40P01", "23505", "55P03":
		return true
	}
	return false
}

// pgUnavailable reports whether err means the database could not be
// reached or went away (down, restarting, network), as opposed to the SQL
// being refused. Those are the errors that mean "refuse new work and try
// again later", and the ones a restart of the server causes.
func pgUnavailable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "08": // connection exception
			return true
		case pe.Code == "57P01", pe.Code == "57P02", pe.Code == "57P03": // shutdown, crash shutdown, starting up
			return true
		}
		return false
	}
	var ce *pgconn.ConnectError
	var ne net.Error
	switch {
	case errors.As(err, &ce), errors.As(err, &ne),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, driver.ErrBadConn), errors.Is(err, sql.ErrConnDone),
		pgconn.Timeout(err), pgconn.SafeToRetry(err):
		return true
	}
	return false
}

// unavailable marks an error from a PostgreSQL store that is down with
// store.ErrUnavailable, so callers can tell "the database is gone" from "this
// request is wrong".
func (s *SQL) unavailable(err error) error {
	if s.pg != nil && pgUnavailable(err) && !errors.Is(err, store.ErrUnavailable) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}
