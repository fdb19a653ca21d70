package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/kickstand/kickstand/internal/store"
)

// Open opens the store named by spec: a postgres:// or postgresql:// URL is
// the shared PostgreSQL store, anything else is a directory for the
// embedded SQLite store, and "-" a private in-memory one (previews).
// Either way the schema is migrated before Open returns.
func Open(ctx context.Context, spec string) (store.Store, error) {
	s, err := OpenSQL(ctx, spec)
	if err != nil {
		return nil, err // a nil store.Store, not a store.Store holding a nil *SQL
	}
	return s, nil
}

// OpenSQL is Open for callers that need the SQL store's own methods
// (Migrate, SchemaVersion, Ping): `kickstand migrate`, health checks.
func OpenSQL(ctx context.Context, spec string) (*SQL, error) {
	switch {
	case spec == "":
		return nil, errors.New("open store: no data directory or postgres:// URL given")
	case spec == "-":
		return OpenSQLiteMemory(ctx)
	case store.IsPostgres(spec):
		return OpenPostgres(ctx, spec)
	}
	return OpenSQLite(ctx, spec)
}

// Migrate brings the schema up to date; it is a no-op when it already is.
// Open does it too; this is for `kickstand migrate`, which upgrades a
// shared database once, before the servers are restarted on a new
// version. On PostgreSQL it holds an advisory lock, so servers starting
// at the same time wait for it instead of racing it.
func (s *SQL) Migrate(ctx context.Context) error {
	if s.pg != nil {
		return s.pgMigrate(ctx)
	}
	return s.migrate(ctx)
}

// SchemaVersion returns the version the store is at and the one this
// build of kickstand expects.
func (s *SQL) SchemaVersion(ctx context.Context) (have, want int, err error) {
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&have); err != nil {
		return 0, len(migrations), fmt.Errorf("schema version: %w", s.unavailable(err))
	}
	return have, len(migrations), nil
}

// Ping checks that the database answers: a health check and metrics
// source (kickstand_store_up). It reconnects if the database came back.
func (s *SQL) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("store ping: %w", s.unavailable(err))
	}
	return nil
}
