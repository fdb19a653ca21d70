package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"

	_ "modernc.org/sqlite" // pure Go: no cgo, so one static binary
)

// OpenSQLite opens (creating if needed) the embedded store in dir.
//
// WAL lets readers (every boot request) run while a writer commits.
// synchronous=FULL fsyncs the WAL on every commit: a lease or state change
// that was acknowledged survives a power loss, which is the promise the DHCP
// server makes when it ACKs. Group commit keeps that affordable.
func OpenSQLite(ctx context.Context, dir string) (*SQL, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	path := filepath.Join(dir, "kickstand.db")
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	// Write transactions take the write lock when they begin: a deferred
	// one that read first fails at once with SQLITE_BUSY when another
	// process (the CLI beside serve) committed meanwhile, instead of
	// waiting out busy_timeout.
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// Keep connections open for the DHCP workers and HTTP handlers: the
	// default of 2 idle connections made busy readers reopen the file and
	// rerun the pragmas per query.
	db.SetMaxIdleConns(64)
	s := &SQL{db: db, closeFns: []func() error{pinAllocator()}}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// OpenSQLiteMemory opens a private in-memory store, for previews (render)
// that must show what the server would send without writing anything.
func OpenSQLiteMemory(ctx context.Context) (*SQL, error) {
	db, err := sql.Open("sqlite", "file:kickstand-preview?mode=memory")
	if err != nil {
		return nil, fmt.Errorf("open memory store: %w", err)
	}
	// One connection: each new connection to :memory: is a new database.
	db.SetMaxOpenConns(1)
	s := &SQL{db: db}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open memory store: %w", err)
	}
	return s, nil
}
