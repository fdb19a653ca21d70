package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

const leaseCols = `addr, mac, client_id, host, state, expires, updated_at`

func scanLease(row interface{ Scan(...any) error }) (store.Lease, error) {
	var l store.Lease
	var addr string
	var exp, upd int64
	if err := row.Scan(&addr, &l.MAC, &l.ClientID, &l.Host, &l.State, &exp, &upd); err != nil {
		return l, err
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return l, fmt.Errorf("lease: bad stored address %q: %w", addr, err)
	}
	l.Addr = a
	l.Expires = time.UnixMilli(exp)
	l.UpdatedAt = time.UnixMilli(upd)
	return l, nil
}

// Leases lists every lease row, in address order.
func (s *SQL) Leases(ctx context.Context) ([]store.Lease, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+leaseCols+` FROM leases ORDER BY num`)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", s.unavailable(err))
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("list leases: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list leases: %w", s.unavailable(err))
	}
	return out, nil
}

// Lease returns the lease row of one address.
func (s *SQL) Lease(ctx context.Context, a netip.Addr) (*store.Lease, error) {
	l, err := scanLease(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+leaseCols+` FROM leases WHERE num = ?`), store.AddrNum(a)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("lease %s: %w", a, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("lease %s: %w", a, s.unavailable(err))
	}
	return &l, nil
}

// CommitLeases applies ops in one transaction and returns one result per op.
// The results are valid only when err is nil: then every successful op is
// durable (SQLite commits with synchronous=FULL), so the caller may ACK.
//
// Every claim of an address is a conditional write (INSERT ... ON CONFLICT
// DO NOTHING, or an UPDATE that re-checks the row it read), retried on
// conflict, so two servers sharing one PostgreSQL database cannot hand one
// address to two clients (coredhcp#142).
func (s *SQL) CommitLeases(ctx context.Context, ops []store.LeaseOp) ([]store.LeaseResult, error) {
	var res []store.LeaseResult
	var err error
	// A whole-batch failure is usually a write conflict with another
	// writer (SQLite's BUSY_SNAPSHOT, a PostgreSQL serialization error):
	// retrying the batch is safe because nothing of it was committed.
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
		res = make([]store.LeaseResult, len(ops))
		err = s.txOnce(ctx, func(stx *sql.Tx) error {
			tx := &leaseTx{tx: stx, stmts: map[string]*sql.Stmt{}, next: map[[2]int64]int64{}}
			// Write first: SQLite then takes the write lock before it has a
			// read snapshot, so a concurrent writer makes it wait
			// (busy_timeout) instead of failing at the first INSERT with
			// SQLITE_BUSY. A no-op on PostgreSQL.
			if _, err := tx.ExecContext(ctx, `UPDATE leases SET state = state WHERE num < 0`); err != nil {
				return err
			}
			if err := s.lockPools(ctx, tx, ops); err != nil {
				return err
			}
			return s.applyLeases(ctx, tx, ops, res)
		})
		if err == nil || ctx.Err() != nil {
			break
		}
		// A database that is down stays down for longer than this loop
		// lasts: fail now (a second try gets past one dead pooled
		// connection), and let the DHCP server refuse new leases.
		if s.pg != nil && pgUnavailable(err) && attempt >= 1 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("commit %d lease changes: %w", len(ops), s.unavailable(err))
	}
	return res, nil
}

// leaseTx is a lease transaction that prepares each statement once: a
// batch runs the same few statements hundreds of times, and re-preparing
// them per call would cost more than the work itself.
type leaseTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	// reserved maps address -> host for every host address, read once per
	// batch (nil until first needed).
	reserved map[string]string
	// next is, per pool, the lowest address above every one used so far.
	next map[[2]int64]int64
}

type rowScanner interface{ Scan(...any) error }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (l *leaseTx) stmt(ctx context.Context, q string) (*sql.Stmt, error) {
	if st, ok := l.stmts[q]; ok {
		return st, nil
	}
	st, err := l.tx.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	l.stmts[q] = st // closed with the transaction
	return st, nil
}

func (l *leaseTx) QueryRowContext(ctx context.Context, q string, args ...any) rowScanner {
	st, err := l.stmt(ctx, q)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(ctx, args...)
}

func (l *leaseTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	st, err := l.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

func (l *leaseTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	st, err := l.stmt(ctx, q)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

// applyLeases applies ops in order. A run of binds to distinct addresses
// (what a boot storm's REQUESTs are) is written with one multi-row upsert:
// the binds touch different rows, so their order does not matter, and one
// statement to parse instead of hundreds is most of a batch's cost.
func (s *SQL) applyLeases(ctx context.Context, tx *leaseTx, ops []store.LeaseOp, res []store.LeaseResult) error {
	var run []int // indexes of the binds waiting to be written
	inRun := map[int64]bool{}
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := s.bindMany(ctx, tx, ops, run, res)
		run = run[:0]
		clear(inRun)
		return err
	}
	for i := range ops {
		op := &ops[i]
		if op.Kind == store.LeaseBind && !inRun[store.AddrNum(op.Addr)] && len(run) < maxBindRun {
			ok, err := s.bindable(ctx, tx, op)
			if err != nil && !isLeaseErr(err) {
				return err
			}
			if !ok {
				res[i] = store.LeaseResult{Err: err}
				continue
			}
			run = append(run, i)
			inRun[store.AddrNum(op.Addr)] = true
			continue
		}
		if err := flush(); err != nil {
			return err
		}
		l, err := s.applyLease(ctx, tx, op)
		if err != nil && !isLeaseErr(err) {
			return err
		}
		res[i] = store.LeaseResult{Lease: l, Err: err}
	}
	return flush()
}

// maxBindRun bounds the rows of one upsert: modernc SQLite binds each
// parameter by searching the argument list, so a statement's binding costs
// the square of its parameters (8 per row), and 64 rows keep that below
// the parsing it saves.
const maxBindRun = 64

// bindable checks what a bind needs before its write: the address is in
// the pool (or reserved for the client) and not another host's reservation.
func (s *SQL) bindable(ctx context.Context, tx *leaseTx, op *store.LeaseOp) (bool, error) {
	if !op.Reserved && !op.InPool(op.Addr) {
		return false, fmt.Errorf("bind %s: %w", op.Addr, store.ErrNotInPool)
	}
	if !op.Reserved {
		other, err := s.reservedForOther(ctx, tx, op.Addr, op.Host)
		if err != nil {
			return false, err
		}
		if other {
			return false, fmt.Errorf("%s is reserved for another host: %w", op.Addr, store.ErrAddressTaken)
		}
	}
	return true, nil
}

// bindMany writes the binds ops[run...] with one upsert, in address order
// (so two servers' batches lock rows in the same order), and learns from
// RETURNING which took their row. A bind that did not is redone alone,
// which says whose the address is.
func (s *SQL) bindMany(ctx context.Context, tx *leaseTx, ops []store.LeaseOp, run []int, res []store.LeaseResult) error {
	sort.Slice(run, func(a, b int) bool { return store.AddrNum(ops[run[a]].Addr) < store.AddrNum(ops[run[b]].Addr) })
	var q strings.Builder
	q.WriteString(`INSERT INTO leases (addr, num, mac, client_id, host, state, expires, updated_at) VALUES `)
	args := make([]any, 0, 8*len(run))
	for k, i := range run {
		op := &ops[i]
		if k > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, op.Addr.String(), store.AddrNum(op.Addr), op.MAC, op.ClientID, op.Host, store.LeaseBound,
			op.Until.UnixMilli(), op.Now.UnixMilli())
	}
	q.WriteString(` ON CONFLICT (num) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, host = excluded.host,
		state = excluded.state, expires = excluded.expires, updated_at = excluded.updated_at
		WHERE leases.mac = excluded.mac OR (leases.client_id <> '' AND leases.client_id = excluded.client_id)
			OR leases.expires <= excluded.updated_at
		RETURNING num`)
	rows, err := tx.tx.QueryContext(ctx, s.rebind(q.String()), args...)
	if err != nil {
		return err
	}
	took := map[int64]bool{}
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		took[n] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, i := range run {
		op := &ops[i]
		if took[store.AddrNum(op.Addr)] {
			res[i] = store.LeaseResult{Lease: store.Lease{Addr: op.Addr, MAC: op.MAC, ClientID: op.ClientID, Host: op.Host,
				State: store.LeaseBound, Expires: op.Until, UpdatedAt: time.UnixMilli(op.Now.UnixMilli())}}
			continue
		}
		l, err := s.claim(ctx, tx, op, op.Addr, store.LeaseBound, false)
		if err != nil && !isLeaseErr(err) {
			return err
		}
		res[i] = store.LeaseResult{Lease: l, Err: err}
	}
	return nil
}

func isLeaseErr(err error) bool {
	return errors.Is(err, store.ErrNoAddress) || errors.Is(err, store.ErrAddressTaken) ||
		errors.Is(err, store.ErrNotInPool) || errors.Is(err, store.ErrNotFound)
}

func (s *SQL) applyLease(ctx context.Context, tx *leaseTx, op *store.LeaseOp) (store.Lease, error) {
	switch op.Kind {
	case store.LeaseOffer:
		return s.offer(ctx, tx, op)
	case store.LeaseBind:
		if !op.Reserved && !op.InPool(op.Addr) {
			return store.Lease{}, fmt.Errorf("bind %s: %w", op.Addr, store.ErrNotInPool)
		}
		return s.claim(ctx, tx, op, op.Addr, store.LeaseBound, false)
	case store.LeaseRelease, store.LeaseDecline:
		return s.giveBack(ctx, tx, op)
	}
	return store.Lease{}, fmt.Errorf("lease op %d: unknown kind", op.Kind)
}

func (s *SQL) leaseAt(ctx context.Context, tx *leaseTx, num int64) (*store.Lease, error) {
	l, err := scanLease(tx.QueryRowContext(ctx, s.rebind(`SELECT `+leaseCols+` FROM leases WHERE num = ?`), num))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// reservedForOther reports whether a is some other host's reservation, which
// the pool must never hand out.
func (s *SQL) reservedForOther(ctx context.Context, tx *leaseTx, a netip.Addr, host string) (bool, error) {
	if tx.reserved == nil {
		rows, err := tx.QueryContext(ctx, `SELECT addr, host FROM host_addrs`)
		if err != nil {
			return false, err
		}
		m := map[string]string{}
		for rows.Next() {
			var addr, h string
			if err := rows.Scan(&addr, &h); err != nil {
				rows.Close()
				return false, err
			}
			m[addr] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return false, err
		}
		tx.reserved = m
	}
	owner, ok := tx.reserved[a.String()]
	return ok && owner != host, nil
}

// claim gives address a to the op's client in the given state, if it is
// free, expired or already the client's. Each write re-checks its
// condition, so a concurrent server cannot slip in between a read and a
// write. fresh says a is probably unused (no row to read first).
func (s *SQL) claim(ctx context.Context, tx *leaseTx, op *store.LeaseOp, a netip.Addr, state string, fresh bool) (store.Lease, error) {
	if !op.Reserved {
		other, err := s.reservedForOther(ctx, tx, a, op.Host)
		if err != nil {
			return store.Lease{}, err
		}
		if other {
			return store.Lease{}, fmt.Errorf("%s is reserved for another host: %w", a, store.ErrAddressTaken)
		}
	}
	num := store.AddrNum(a)
	now := op.Now.UnixMilli()
	want := store.Lease{Addr: a, MAC: op.MAC, ClientID: op.ClientID, Host: op.Host, State: state, Expires: op.Until, UpdatedAt: time.UnixMilli(now)}
	if state == store.LeaseOffered && !fresh {
		cur, err := s.leaseAt(ctx, tx, num)
		if err != nil {
			return store.Lease{}, err
		}
		if cur != nil && op.Owns(cur) && cur.State == store.LeaseBound && !cur.Expires.Before(op.Until) {
			return *cur, nil // an offer never shortens a bound lease
		}
	}
	// One upsert takes the row if it is free, the client's own, or expired
	// (a declined row has no MAC, so only its expiry frees it). The
	// condition is checked by the database against the row it locks, so a
	// concurrent server cannot slip in between a read and a write, and one
	// statement instead of an UPDATE then an INSERT halves the parsing
	// (modernc SQLite prepares each statement anew).
	upsert := func() (bool, error) {
		r, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO leases (addr, num, mac, client_id, host, state, expires, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (num) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, host = excluded.host,
				state = excluded.state, expires = excluded.expires, updated_at = excluded.updated_at
			WHERE leases.mac = excluded.mac OR (leases.client_id <> '' AND leases.client_id = excluded.client_id)
				OR leases.expires <= excluded.updated_at`),
			a.String(), num, op.MAC, op.ClientID, op.Host, state, op.Until.UnixMilli(), now)
		if err != nil {
			return false, err
		}
		n, _ := r.RowsAffected()
		return n == 1, nil
	}
	for try := 0; try < 3; try++ {
		ok, err := upsert()
		if err != nil {
			return store.Lease{}, err
		}
		if ok {
			return want, nil
		}
		// The row exists and is not ours to take: say whose it is.
		cur, err := s.leaseAt(ctx, tx, num)
		if err != nil {
			return store.Lease{}, err
		}
		if cur != nil && cur.Active(op.Now) && !(op.Owns(cur) && cur.State != store.LeaseDeclined) {
			return store.Lease{}, fmt.Errorf("%s is held by %s until %s: %w", a, cur.MAC, cur.Expires.UTC().Format(time.RFC3339), store.ErrAddressTaken)
		}
		// It changed between our statements (another server): again.
	}
	return store.Lease{}, fmt.Errorf("%s: changed under us repeatedly: %w", a, store.ErrAddressTaken)
}

// offer chooses an address. The order keeps addresses stable: a client that
// comes back (a reinstall, Anaconda's second DHCP) gets what it had.
func (s *SQL) offer(ctx context.Context, tx *leaseTx, op *store.LeaseOp) (store.Lease, error) {
	if op.Reserved {
		return s.claim(ctx, tx, op, op.Addr, store.LeaseOffered, false)
	}
	if !op.PoolFirst.IsValid() {
		return store.Lease{}, store.ErrNoAddress
	}
	lo, hi := store.AddrNum(op.PoolFirst), store.AddrNum(op.PoolLast)
	try := func(a netip.Addr, fresh bool) (store.Lease, bool, error) {
		l, err := s.claim(ctx, tx, op, a, store.LeaseOffered, fresh)
		if errors.Is(err, store.ErrAddressTaken) {
			return l, false, nil
		}
		return l, err == nil, err
	}
	// 1. The client's previous address in this pool. "+num" keeps the
	// planner on the mac / client_id index instead of scanning the pool.
	prevQ := []struct{ col, val string }{{"mac", op.MAC}, {"client_id", op.ClientID}}
	for _, pq := range prevQ {
		if pq.val == "" {
			continue
		}
		var prev int64
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT num FROM leases WHERE `+pq.col+` = ? AND +num BETWEEN ? AND ? AND state <> ?
			ORDER BY updated_at DESC LIMIT 1`), pq.val, lo, hi, store.LeaseDeclined).Scan(&prev)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return store.Lease{}, err
		}
		if l, ok, err := try(store.NumAddr(prev), false); ok || err != nil {
			return l, err
		}
	}
	// 2. The address it asked for.
	if op.Addr.IsValid() && op.InPool(op.Addr) {
		if l, ok, err := try(op.Addr, false); ok || err != nil {
			return l, err
		}
	}
	// 3. An address never used: above the highest one handed out so far
	// (looked up once per batch, then counted on).
	pool := [2]int64{lo, hi}
	next, known := tx.next[pool]
	if !known {
		var max sql.NullInt64
		if err := tx.QueryRowContext(ctx, s.rebind(`SELECT MAX(num) FROM leases WHERE num BETWEEN ? AND ?`), lo, hi).Scan(&max); err != nil {
			return store.Lease{}, err
		}
		next = lo
		if max.Valid {
			next = max.Int64 + 1
		}
	}
	for ; next <= hi; next++ {
		l, ok, err := try(store.NumAddr(next), true)
		if ok || err != nil {
			tx.next[pool] = next + 1
			return l, err
		}
	}
	tx.next[pool] = next
	// 4. The address that expired longest ago.
	rows, err := tx.QueryContext(ctx, s.rebind(`SELECT num FROM leases WHERE num BETWEEN ? AND ? AND expires <= ? ORDER BY expires LIMIT 16`),
		lo, hi, op.Now.UnixMilli())
	if err != nil {
		return store.Lease{}, err
	}
	var cands []int64
	for rows.Next() {
		var n int64
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return store.Lease{}, err
		}
		cands = append(cands, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return store.Lease{}, err
	}
	for _, n := range cands {
		if l, ok, err := try(store.NumAddr(n), false); ok || err != nil {
			return l, err
		}
	}
	// 5. A hole below the highest address (left by requested addresses).
	from := lo
	for i := 0; i < 64 && from <= hi; i++ {
		var gap sql.NullInt64
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT MIN(c) FROM (
				SELECT CAST(? AS BIGINT) AS c WHERE NOT EXISTS (SELECT 1 FROM leases WHERE num = ?)
				UNION ALL
				SELECT a.num + 1 AS c FROM leases a WHERE a.num >= ? AND a.num < ?
					AND NOT EXISTS (SELECT 1 FROM leases b WHERE b.num = a.num + 1)
			) gaps`), from, from, from, hi).Scan(&gap)
		if err != nil {
			return store.Lease{}, err
		}
		if !gap.Valid {
			break
		}
		if l, ok, err := try(store.NumAddr(gap.Int64), false); ok || err != nil {
			return l, err
		}
		from = gap.Int64 + 1
	}
	return store.Lease{}, store.ErrNoAddress
}

// giveBack releases or declines an address, but only for the client that
// holds it: a forged RELEASE must not free someone else's address.
func (s *SQL) giveBack(ctx context.Context, tx *leaseTx, op *store.LeaseOp) (store.Lease, error) {
	num := store.AddrNum(op.Addr)
	cur, err := s.leaseAt(ctx, tx, num)
	if err != nil {
		return store.Lease{}, err
	}
	if cur == nil || !op.Owns(cur) || cur.State == store.LeaseDeclined {
		return store.Lease{}, fmt.Errorf("lease %s of %s: %w", op.Addr, op.MAC, store.ErrNotFound)
	}
	l := *cur
	l.UpdatedAt = time.UnixMilli(op.Now.UnixMilli())
	if op.Kind == store.LeaseRelease {
		// Keep the MAC: the client gets the same address when it returns.
		l.State, l.Expires = store.LeaseReleased, l.UpdatedAt
	} else {
		l.State, l.Expires, l.MAC, l.ClientID, l.Host = store.LeaseDeclined, op.Until, "", "", ""
	}
	_, err = tx.ExecContext(ctx, s.rebind(`UPDATE leases SET mac = ?, client_id = ?, host = ?, state = ?, expires = ?, updated_at = ? WHERE num = ?`),
		l.MAC, l.ClientID, l.Host, l.State, l.Expires.UnixMilli(), l.UpdatedAt.UnixMilli(), num)
	if err != nil {
		return store.Lease{}, err
	}
	return l, nil
}
