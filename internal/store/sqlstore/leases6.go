package sqlstore

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

func key6Addr(k string) (netip.Addr, error) {
	b, err := hex.DecodeString(k)
	if err != nil || len(b) != 16 {
		return netip.Addr{}, fmt.Errorf("lease6: bad stored key %q", k)
	}
	return netip.AddrFrom16([16]byte(b)), nil
}

const lease6Cols = `addr, duid, iaid, mac, host, state, expires, updated_at`

func scanLease6(row interface{ Scan(...any) error }) (store.Lease6, error) {
	var l store.Lease6
	var addr string
	var iaid, exp, upd int64
	if err := row.Scan(&addr, &l.DUID, &iaid, &l.MAC, &l.Host, &l.State, &exp, &upd); err != nil {
		return l, err
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return l, fmt.Errorf("lease6: bad stored address %q: %w", addr, err)
	}
	l.Addr, l.IAID = a, uint32(iaid)
	l.Expires, l.UpdatedAt = time.UnixMilli(exp), time.UnixMilli(upd)
	return l, nil
}

// Leases6 lists every IPv6 lease row, in address order.
func (s *SQL) Leases6(ctx context.Context) ([]store.Lease6, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+lease6Cols+` FROM leases6 ORDER BY num`)
	if err != nil {
		return nil, fmt.Errorf("list leases6: %w", err)
	}
	defer rows.Close()
	var out []store.Lease6
	for rows.Next() {
		l, err := scanLease6(rows)
		if err != nil {
			return nil, fmt.Errorf("list leases6: %w", err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list leases6: %w", err)
	}
	return out, nil
}

// Lease6 returns the lease row of one IPv6 address.
func (s *SQL) Lease6(ctx context.Context, a netip.Addr) (*store.Lease6, error) {
	l, err := scanLease6(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+lease6Cols+` FROM leases6 WHERE num = ?`), store.Addr6Key(a)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("lease6 %s: %w", a, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("lease6 %s: %w", a, err)
	}
	return &l, nil
}

// CommitLeases6 is CommitLeases for IPv6: ops applied in one transaction,
// one result per op, every claim a conditional write, the batch retried
// when it lost a race with another writer.
func (s *SQL) CommitLeases6(ctx context.Context, ops []store.Lease6Op) ([]store.Lease6Result, error) {
	var res []store.Lease6Result
	var err error
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
		res = make([]store.Lease6Result, len(ops))
		err = s.txOnce(ctx, func(stx *sql.Tx) error {
			tx := &leaseTx{tx: stx, stmts: map[string]*sql.Stmt{}}
			l6 := &lease6Tx{leaseTx: tx, next: map[[2]string]netip.Addr{}}
			// Write first, so SQLite takes the write lock before its read
			// snapshot (see CommitLeases).
			if _, err := tx.ExecContext(ctx, `UPDATE leases6 SET state = state WHERE num = ''`); err != nil {
				return err
			}
			if err := s.lockPools6(ctx, tx, ops); err != nil {
				return err
			}
			for i := range ops {
				l, err := s.applyLease6(ctx, l6, &ops[i])
				if err != nil && !isLeaseErr(err) {
					return err
				}
				res[i] = store.Lease6Result{Lease: l, Err: err}
			}
			return nil
		})
		if err == nil || ctx.Err() != nil {
			break
		}
		if s.pg != nil && pgUnavailable(err) && attempt >= 1 {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("commit %d IPv6 lease changes: %w", len(ops), s.unavailable(err))
	}
	return res, nil
}

// lease6Tx is a lease transaction with the IPv6 pool cursor: per pool, the
// lowest address above every one used so far in this batch.
type lease6Tx struct {
	*leaseTx
	next map[[2]string]netip.Addr
}

// lockPools6 is lockPools for IPv6 pools: batches that hand out new
// addresses from one pool take turns across servers sharing PostgreSQL.
func (s *SQL) lockPools6(ctx context.Context, tx *leaseTx, ops []store.Lease6Op) error {
	if s.pg == nil {
		return nil
	}
	seen := map[int32]bool{}
	var keys []int32
	for i := range ops {
		op := &ops[i]
		if (op.Kind != store.LeaseOffer && op.Kind != store.LeaseBind) || op.Reserved || !op.PoolFirst.IsValid() {
			continue
		}
		h := fnv.New32a()
		h.Write([]byte("v6 " + store.Addr6Key(op.PoolFirst)))
		if k := int32(h.Sum32()); !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	for _, k := range keys {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, pgLockPoolClass, k); err != nil {
			return err
		}
	}
	return nil
}

func (s *SQL) applyLease6(ctx context.Context, tx *lease6Tx, op *store.Lease6Op) (store.Lease6, error) {
	switch op.Kind {
	case store.LeaseOffer:
		return s.choose6(ctx, tx, op, store.LeaseOffered)
	case store.LeaseBind:
		return s.choose6(ctx, tx, op, store.LeaseBound)
	case store.LeaseRelease, store.LeaseDecline:
		return s.giveBack6(ctx, tx, op)
	}
	return store.Lease6{}, fmt.Errorf("lease6 op %d: unknown kind", op.Kind)
}

func (s *SQL) lease6At(ctx context.Context, tx *lease6Tx, key string) (*store.Lease6, error) {
	l, err := scanLease6(tx.QueryRowContext(ctx, s.rebind(`SELECT `+lease6Cols+` FROM leases6 WHERE num = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// claim6 gives a to the op's client in state, if it is free, expired or
// already the client's; every write re-checks its condition. fresh says a
// is probably unused, so the insert is tried first.
func (s *SQL) claim6(ctx context.Context, tx *lease6Tx, op *store.Lease6Op, a netip.Addr, state string, fresh bool) (store.Lease6, error) {
	if !op.Reserved {
		other, err := s.reservedForOther(ctx, tx.leaseTx, a, op.Host)
		if err != nil {
			return store.Lease6{}, err
		}
		if other {
			return store.Lease6{}, fmt.Errorf("%s is reserved for another host: %w", a, store.ErrAddressTaken)
		}
	}
	key := store.Addr6Key(a)
	now := op.Now.UnixMilli()
	want := store.Lease6{Addr: a, DUID: op.DUID, IAID: op.IAID, MAC: op.MAC, Host: op.Host, State: state, Expires: op.Until, UpdatedAt: time.UnixMilli(now)}
	if state == store.LeaseOffered && !fresh {
		cur, err := s.lease6At(ctx, tx, key)
		if err != nil {
			return store.Lease6{}, err
		}
		if cur != nil && op.Owns(cur) && cur.State == store.LeaseBound && !cur.Expires.Before(op.Until) {
			return *cur, nil // an offer never shortens a bound lease
		}
	}
	insert := func() (bool, error) {
		r, err := tx.ExecContext(ctx, s.rebind(`INSERT INTO leases6 (num, addr, duid, iaid, mac, host, state, expires, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (num) DO NOTHING`),
			key, a.String(), op.DUID, int64(op.IAID), op.MAC, op.Host, state, op.Until.UnixMilli(), now)
		if err != nil {
			return false, err
		}
		n, _ := r.RowsAffected()
		return n == 1, nil
	}
	reserved := 0
	if op.Reserved {
		reserved = 1
	}
	// The SQL form of Owns, or expiry (a declined row has no DUID or MAC,
	// so only its expiry frees it).
	update := func() (bool, error) {
		r, err := tx.ExecContext(ctx, s.rebind(`UPDATE leases6 SET duid = ?, iaid = ?, mac = ?, host = ?, state = ?, expires = ?, updated_at = ?
			WHERE num = ? AND ((duid <> '' AND duid = ? AND iaid = ?) OR (mac <> '' AND mac = ? AND duid <> ?)
				OR (? = 1 AND host <> '' AND host = ?) OR expires <= ?)`),
			op.DUID, int64(op.IAID), op.MAC, op.Host, state, op.Until.UnixMilli(), now,
			key, op.DUID, int64(op.IAID), op.MAC, op.DUID, reserved, op.Host, now)
		if err != nil {
			return false, err
		}
		n, _ := r.RowsAffected()
		return n == 1, nil
	}
	steps := []func() (bool, error){update, insert}
	if fresh {
		steps = []func() (bool, error){insert, update}
	}
	for try := 0; try < 3; try++ {
		for _, step := range steps {
			ok, err := step()
			if err != nil {
				return store.Lease6{}, err
			}
			if ok {
				return want, nil
			}
		}
		cur, err := s.lease6At(ctx, tx, key)
		if err != nil {
			return store.Lease6{}, err
		}
		if cur != nil && cur.Active(op.Now) && !(op.Owns(cur) && cur.State != store.LeaseDeclined) {
			return store.Lease6{}, fmt.Errorf("%s is held by DUID %s until %s: %w", a, cur.DUID, cur.Expires.UTC().Format(time.RFC3339), store.ErrAddressTaken)
		}
	}
	return store.Lease6{}, fmt.Errorf("%s: changed under us repeatedly: %w", a, store.ErrAddressTaken)
}

// choose6 picks and claims the op's address (see store.Lease6Op for the order).
// IPv6 pools may be far larger than anything stored, so the search never
// walks a pool: it looks up the client's rows, the highest address used,
// expired rows, and at last a bounded window of rows for a gap.
func (s *SQL) choose6(ctx context.Context, tx *lease6Tx, op *store.Lease6Op, state string) (store.Lease6, error) {
	if op.Reserved {
		return s.claim6(ctx, tx, op, op.Addr, state, false)
	}
	if !op.PoolFirst.IsValid() {
		return store.Lease6{}, store.ErrNoAddress
	}
	lo, hi := store.Addr6Key(op.PoolFirst), store.Addr6Key(op.PoolLast)
	try := func(a netip.Addr, fresh bool) (store.Lease6, bool, error) {
		l, err := s.claim6(ctx, tx, op, a, state, fresh)
		if errors.Is(err, store.ErrAddressTaken) {
			return l, false, nil
		}
		return l, err == nil, err
	}
	// 1. The client's previous address in the pool: its IA, then another
	// boot stage of the same MAC.
	prev := []struct {
		where string
		args  []any
	}{
		{`duid = ? AND iaid = ?`, []any{op.DUID, int64(op.IAID)}},
		{`mac = ? AND duid <> ?`, []any{op.MAC, op.DUID}},
	}
	for _, pq := range prev {
		if pq.args[0] == "" {
			continue
		}
		var k string
		args := append(append([]any{}, pq.args...), lo, hi, store.LeaseDeclined)
		err := tx.QueryRowContext(ctx, s.rebind(`SELECT num FROM leases6 WHERE `+pq.where+` AND num BETWEEN ? AND ? AND state <> ?
			ORDER BY updated_at DESC LIMIT 1`), args...).Scan(&k)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return store.Lease6{}, err
		}
		a, err := key6Addr(k)
		if err != nil {
			return store.Lease6{}, err
		}
		if l, ok, err := try(a, false); ok || err != nil {
			return l, err
		}
	}
	// 2. The address it asked for or holds.
	if op.Addr.IsValid() && op.InPool(op.Addr) {
		if l, ok, err := try(op.Addr, false); ok || err != nil {
			return l, err
		}
	}
	// 3. An address never used: above the highest one so far.
	pool := [2]string{lo, hi}
	next, known := tx.next[pool]
	if !known {
		var max sql.NullString
		if err := tx.QueryRowContext(ctx, s.rebind(`SELECT MAX(num) FROM leases6 WHERE num BETWEEN ? AND ?`), lo, hi).Scan(&max); err != nil {
			return store.Lease6{}, err
		}
		next = op.PoolFirst
		if max.Valid {
			m, err := key6Addr(max.String)
			if err != nil {
				return store.Lease6{}, err
			}
			next = m.Next()
		}
	}
	for i := 0; i < 1024 && next.IsValid() && !op.PoolLast.Less(next); i, next = i+1, next.Next() {
		l, ok, err := try(next, true)
		if ok || err != nil {
			tx.next[pool] = next.Next()
			return l, err
		}
	}
	tx.next[pool] = next
	// 4. The address that expired longest ago.
	cands, err := s.keys6(ctx, tx, `SELECT num FROM leases6 WHERE num BETWEEN ? AND ? AND expires <= ? ORDER BY expires LIMIT 16`,
		lo, hi, op.Now.UnixMilli())
	if err != nil {
		return store.Lease6{}, err
	}
	for _, a := range cands {
		if l, ok, err := try(a, false); ok || err != nil {
			return l, err
		}
	}
	// 5. A gap among the lowest rows of the pool (left by requested
	// addresses below the highest one).
	used, err := s.keys6(ctx, tx, `SELECT num FROM leases6 WHERE num BETWEEN ? AND ? ORDER BY num LIMIT 4096`, lo, hi)
	if err != nil {
		return store.Lease6{}, err
	}
	want := op.PoolFirst
	for _, a := range used {
		if want.Less(a) {
			break
		}
		want = a.Next()
	}
	for i := 0; i < 16 && want.IsValid() && !op.PoolLast.Less(want); i, want = i+1, want.Next() {
		if l, ok, err := try(want, false); ok || err != nil {
			return l, err
		}
	}
	return store.Lease6{}, store.ErrNoAddress
}

func (s *SQL) keys6(ctx context.Context, tx *lease6Tx, q string, args ...any) ([]netip.Addr, error) {
	rows, err := tx.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []netip.Addr
	for rows.Next() {
		var k string
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		a, err := key6Addr(k)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// giveBack6 releases or declines an address, only for the client holding
// it: a forged Release must not free someone else's address.
func (s *SQL) giveBack6(ctx context.Context, tx *lease6Tx, op *store.Lease6Op) (store.Lease6, error) {
	key := store.Addr6Key(op.Addr)
	cur, err := s.lease6At(ctx, tx, key)
	if err != nil {
		return store.Lease6{}, err
	}
	if cur == nil || !op.Owns(cur) || cur.State == store.LeaseDeclined {
		return store.Lease6{}, fmt.Errorf("lease6 %s of DUID %s: %w", op.Addr, op.DUID, store.ErrNotFound)
	}
	l := store.GiveBack6(*cur, op)
	_, err = tx.ExecContext(ctx, s.rebind(`UPDATE leases6 SET duid = ?, iaid = ?, mac = ?, host = ?, state = ?, expires = ?, updated_at = ? WHERE num = ?`),
		l.DUID, int64(l.IAID), l.MAC, l.Host, l.State, l.Expires.UnixMilli(), l.UpdatedAt.UnixMilli(), key)
	if err != nil {
		return store.Lease6{}, err
	}
	return l, nil
}
