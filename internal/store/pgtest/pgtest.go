// Package pgtest gives tests a real PostgreSQL server: the one named by
// KICKSTAND_PG_DSN, or a throwaway cluster that scripts/postgres.sh creates
// under /tmp, listening only on a unix socket, and removes afterwards. It
// never touches a system cluster.
//
// Without PostgreSQL (and without root to install it) tests skip, unless
// KICKSTAND_REQUIRE_PEERS=1, where they fail: CI must not go green by
// skipping the shared-store tests.
package pgtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// Cluster is a throwaway PostgreSQL cluster owned by one test.
type Cluster struct {
	Dir    string // data, socket and log
	DSN    string // superuser DSN to database "kickstand", over the socket
	script string
}

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if vmtest.RequirePeers() {
		t.Fatalf(format+" (KICKSTAND_REQUIRE_PEERS=1)", args...)
	}
	t.Skipf(format, args...)
}

// DSN returns KICKSTAND_PG_DSN when it is set, else starts a cluster for
// the test (removed at cleanup) and returns its DSN.
func DSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv("KICKSTAND_PG_DSN"); dsn != "" {
		return dsn
	}
	return Start(t).DSN
}

// Start creates and starts a new cluster, stopped and removed at cleanup.
// Tests that stop or crash the server need their own, whatever
// KICKSTAND_PG_DSN says.
func Start(t testing.TB) *Cluster {
	t.Helper()
	root, err := vmtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "scripts", "postgres.sh")
	if !havePostgres() && os.Geteuid() != 0 {
		skipOrFail(t, "needs PostgreSQL server binaries (Debian postgresql), or root to install them")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		skipOrFail(t, "needs bash to run scripts/postgres.sh")
	}
	reapStale(script)
	dir, err := os.MkdirTemp("", "kickstand-pg.")
	if err != nil {
		t.Fatal(err)
	}
	c := &Cluster{Dir: dir, script: script}
	// The owner file lets a later run remove this cluster if this test
	// process dies before its cleanup runs (killed, timed out).
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if out, err := exec.Command(script, "destroy", dir).CombinedOutput(); err != nil {
			t.Logf("postgres.sh destroy %s: %v: %s", dir, err, out)
			os.RemoveAll(dir)
		}
	})
	out, err := c.run("start")
	if err != nil {
		t.Fatalf("postgres.sh start: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	c.DSN = lines[len(lines)-1]
	return c
}

const ownerFile = "owner.pid"

// reapStale destroys clusters that earlier test processes started and did
// not live to remove. Clusters without an owner file (started by hand with
// scripts/postgres.sh) are left alone.
func reapStale(script string) {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "kickstand-pg.*"))
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || errors.Is(err, syscall.EPERM) {
			continue // still running
		}
		exec.Command(script, "destroy", dir).Run()
	}
}

func havePostgres() bool {
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl")
	return len(m) > 0
}

func (c *Cluster) run(cmd string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var stdout, stderr strings.Builder
	x := exec.CommandContext(ctx, c.script, cmd, c.Dir)
	x.Stdout, x.Stderr = &stdout, &stderr
	err := x.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

// Crash stops the server the way a power cut would (immediate shutdown:
// no checkpoint, WAL recovery on the next start).
func (c *Cluster) Crash(t testing.TB) {
	t.Helper()
	if out, err := c.run("crash"); err != nil {
		t.Fatalf("postgres.sh crash: %v\n%s", err, out)
	}
}

// Stop shuts the server down cleanly.
func (c *Cluster) Stop(t testing.TB) {
	t.Helper()
	if out, err := c.run("stop"); err != nil {
		t.Fatalf("postgres.sh stop: %v\n%s", err, out)
	}
}

// Restart starts a stopped or crashed server again.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	if out, err := c.run("start"); err != nil {
		t.Fatalf("postgres.sh start: %v\n%s", err, out)
	}
}

// Schema creates an empty schema in dsn's database and returns a DSN
// whose sessions use it (search_path), so each test gets a fresh store
// without the cost of a database per test. It is dropped at cleanup.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := "kt_" + hex.EncodeToString(b)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", dsn)
		if err != nil {
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+name+` CASCADE`); err != nil {
			t.Logf("drop schema %s: %v", name, err)
		}
	})
	return WithParam(dsn, "search_path", name)
}

// WithParam adds a run-time parameter to a URL or key=value DSN.
func WithParam(dsn, key, value string) string {
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}
