package storetest

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/pgtest"
	"github.com/kickstand/kickstand/internal/store/sqlstore"

	_ "github.com/jackc/pgx/v5/stdlib"
)

// postgresOpener opens a fresh store per call: a new schema in the test
// server's database, reopened over the same DSN for the durability checks.
func postgresOpener(dsn string) Opener {
	return func(t *testing.T) (store.Store, func() store.Store) {
		sdsn := pgtest.Schema(t, dsn)
		s, err := sqlstore.Open(context.Background(), sdsn)
		if err != nil {
			t.Fatal(err)
		}
		cur := store.Store(s)
		t.Cleanup(func() { cur.Close() })
		return s, func() store.Store {
			cur.Close()
			s2, err := sqlstore.Open(context.Background(), sdsn)
			if err != nil {
				t.Fatal(err)
			}
			cur = s2
			return s2
		}
	}
}

// TestPostgres holds the PostgreSQL store to the same contract as SQLite
// and the fake.
func TestPostgres(t *testing.T) {
	open := postgresOpener(pgtest.DSN(t))
	Run(t, open)
	RunLeases(t, open)
}

// TestPostgresTwoServersOneDatabase is the shared-store case the contract
// suite cannot express with one handle: separate *sqlstore.SQL handles (as
// two kickstand processes have) started at the same time on one empty
// database, racing the migration and the first sync, then allocating from
// one pool concurrently.
func TestPostgresTwoServersOneDatabase(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	const servers = 4
	stores := make([]*sqlstore.SQL, servers)
	var wg sync.WaitGroup
	errs := make([]error, servers)
	for i := range stores {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := sqlstore.OpenSQL(ctx, dsn)
			if err != nil {
				errs[i] = err
				return
			}
			stores[i] = s
			_, errs[i] = s.SyncDeclared(ctx, Declared(now))
		}()
	}
	wg.Wait()
	for i, s := range stores {
		if s != nil {
			t.Cleanup(func() { s.Close() })
		}
		if errs[i] != nil {
			t.Fatalf("server %d: open and sync: %v", i, errs[i])
		}
	}
	have, want, err := stores[0].SchemaVersion(ctx)
	if err != nil || have != want {
		t.Fatalf("schema version %d, want %d (%v)", have, want, err)
	}
	if h, err := stores[1].Host(ctx, "a"); err != nil || h.Token == "" {
		t.Fatalf("host a after concurrent syncs: %+v, %v", h, err)
	}

	// 4 servers race through the same pool of 2,000 addresses per family.
	shared := make([]store.Store, len(stores))
	for i, s := range stores {
		shared[i] = s
	}
	for _, fam := range LeaseFamilies {
		pool := make([]netip.Addr, 0, 2000)
		for a := fam.Pool[0]; len(pool) < 2000; a = a.Next() {
			pool = append(pool, a)
		}
		Arbitrate(t, shared, fam.Family, pool, 40, 50, now)
	}
}

// TestPostgresRestart: while the server is down every call fails with
// ErrUnavailable and nothing is half-done; once it is back, the same
// handle works again without being reopened, and what was committed
// before the crash is there.
func TestPostgresRestart(t *testing.T) {
	c := pgtest.Start(t)
	ctx := context.Background()
	s, err := sqlstore.OpenSQL(ctx, c.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.UnixMilli(time.Now().UnixMilli())
	if _, err := s.SyncDeclared(ctx, Declared(now)); err != nil {
		t.Fatal(err)
	}
	op := store.LeaseOp{Kind: store.LeaseBind, MAC: "02:00:00:00:00:01", Addr: netip.MustParseAddr("198.51.100.10"),
		PoolFirst: netip.MustParseAddr("198.51.100.10"), PoolLast: netip.MustParseAddr("198.51.100.20"), Now: now, Until: now.Add(time.Hour)}
	if res, err := s.CommitLeases(ctx, []store.LeaseOp{op}); err != nil || res[0].Err != nil {
		t.Fatalf("bind: %+v, %v", res, err)
	}

	c.Crash(t)
	op2 := op
	op2.MAC, op2.Addr = "02:00:00:00:00:02", netip.MustParseAddr("198.51.100.11")
	if _, err := s.CommitLeases(ctx, []store.LeaseOp{op2}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("commit while down: %v, want ErrUnavailable", err)
	}
	if _, err := s.HostByMAC(ctx, "52:54:00:00:00:0a"); err == nil {
		t.Error("lookup while down succeeded")
	}
	if err := s.Ping(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("ping while down: %v, want ErrUnavailable", err)
	}
	if err := s.AppendEvents(ctx, []store.Event{{Host: "a", At: now, Kind: "k"}}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("events while down: %v, want ErrUnavailable", err)
	}

	c.Restart(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := s.CommitLeases(ctx, []store.LeaseOp{op2})
		if err == nil {
			if res[0].Err != nil {
				t.Fatalf("bind after restart: %v", res[0].Err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("store did not recover within 30 s of the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, want := range []store.LeaseOp{op, op2} {
		l, err := s.Lease(ctx, want.Addr)
		if err != nil || l.MAC != want.MAC || l.State != store.LeaseBound {
			t.Errorf("lease %v after the crash: %+v, %v", want.Addr, l, err)
		}
	}
	if h, err := s.Host(ctx, "a"); err != nil || h.State != inventory.StateInstall {
		t.Errorf("host a after the crash: %+v, %v", h, err)
	}
}

// TestOpenSpec checks that Open picks the backend from the spec.
func TestOpenSpec(t *testing.T) {
	for spec, pg := range map[string]bool{"postgres://x/y": true, "POSTGRESQL://x": true, "/var/lib/kickstand": false, "data": false, "postgres": false} {
		if store.IsPostgres(spec) != pg {
			t.Errorf("IsPostgres(%q) = %v", spec, !pg)
		}
	}
	dir := t.TempDir()
	s, err := sqlstore.OpenSQL(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if have, want, err := s.SchemaVersion(context.Background()); err != nil || have != want {
		t.Errorf("SQLite schema version %d/%d, %v", have, want, err)
	}
	if st, err := sqlstore.Open(context.Background(), ""); err == nil || st != nil {
		t.Errorf("Open of an empty spec = %v, %v", st, err)
	}
	for in, want := range map[string]string{
		"postgres://ks:secret@db.example/kickstand":                      "postgres://ks:xxxxx@db.example/kickstand",
		"postgresql://ks@db.example/kickstand?password=secret&sslmode=x": "postgresql://ks@db.example/kickstand?password=xxxxx&sslmode=x",
		"/var/lib/kickstand": "/var/lib/kickstand",
	} {
		if got := store.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPostgresFollowSeesWriteThatWaited: a server following another's
// writes (boot.Index.Follow) asks for the hosts changed since a little
// before its last look. A state change that waited (for a row lock here;
// for a pool connection under a boot storm) must carry the time it was
// made, not the time it was asked for: stamped before the wait, it
// commits with a time the reader has already looked past, and the reader
// serves the old state -- a survivor of a failover handing out a build
// token the dead server's callback had cleared -- until its next full
// reload.
func TestPostgresFollowSeesWriteThatWaited(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.DSN(t))
	ctx := context.Background()
	w, err := sqlstore.OpenSQL(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.SyncDeclared(ctx, Declared(time.Now())); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT 1 FROM hosts WHERE name = 'a' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := w.SetHostState(ctx, "a", store.Transition{State: inventory.StateLocal})
		done <- err
	}()
	time.Sleep(1500 * time.Millisecond)
	// The reader looks now, and next time asks from a second before.
	mark := time.Now().Add(-time.Second)
	if hs, _, err := w.HostsChangedSince(ctx, mark); err != nil || len(hs) != 0 {
		t.Fatalf("before the write committed: %+v, %v", hs, err)
	}
	tx.Rollback()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	hs, _, err := w.HostsChangedSince(ctx, mark)
	if err != nil || len(hs) != 1 || hs[0].Name != "a" || hs[0].State != inventory.StateLocal {
		t.Errorf("after the write committed: %+v, %v; want host a in state local", hs, err)
	}
}
