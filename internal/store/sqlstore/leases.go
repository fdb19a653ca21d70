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

// leaseTable is where one family's leases live. The two tables have the
// same columns; only the key differs: the IPv4 address as an integer, the
// IPv6 address as 32 hex digits (text order is then address order).
type leaseTable struct {
	name string
	key  func(netip.Addr) any
}

var (
	leases4 = leaseTable{"leases", func(a netip.Addr) any { return store.AddrNum(a) }}
	leases6 = leaseTable{"leases6", func(a netip.Addr) any { return store.Addr6Key(a) }}
)

func tableOf(a netip.Addr) leaseTable {
	if store.Family(a) == 4 {
		return leases4
	}
	return leases6
}

const leaseCols = `addr, mac, client_id, iaid, host, state, expires, updated_at`

func scanLease(row interface{ Scan(...any) error }) (store.Lease, error) {
	var l store.Lease
	var addr string
	var iaid, exp, upd int64
	if err := row.Scan(&addr, &l.MAC, &l.ClientID, &iaid, &l.Host, &l.State, &exp, &upd); err != nil {
		return l, err
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return l, fmt.Errorf("lease: bad stored address %q: %w", addr, err)
	}
	l.Addr, l.IAID = a, uint32(iaid)
	l.Expires, l.UpdatedAt = time.UnixMilli(exp), time.UnixMilli(upd)
	return l, nil
}

// Leases lists one family's lease rows, in address order.
func (s *SQL) Leases(ctx context.Context, family int) ([]store.Lease, error) {
	t := leases4
	if family == 6 {
		t = leases6
	}
	rows, err := s.db.QueryContext(ctx, `SELECT `+leaseCols+` FROM `+t.name+` ORDER BY num`)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", t.name, s.unavailable(err))
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", t.name, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list %s: %w", t.name, s.unavailable(err))
	}
	return out, nil
}

// SharedLeases reports whether other servers may write this store's
// leases: a PostgreSQL database is shared by design, a SQLite file is one
// server's own.
func (s *SQL) SharedLeases() bool { return s.pg != nil }

// MACLeases returns one family's rows of one NIC (indexed by MAC): the
// leases another server sharing the store gave it.
func (s *SQL) MACLeases(ctx context.Context, family int, mac string) ([]store.Lease, error) {
	t := leases4
	if family == 6 {
		t = leases6
	}
	rows, err := s.db.QueryContext(ctx, s.rebind(`SELECT `+leaseCols+` FROM `+t.name+` WHERE mac = ? ORDER BY num`), mac)
	if err != nil {
		return nil, fmt.Errorf("leases of %s: %w", mac, s.unavailable(err))
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, fmt.Errorf("leases of %s: %w", mac, err)
		}
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("leases of %s: %w", mac, s.unavailable(err))
	}
	return out, nil
}

// Lease returns the lease row of one address.
func (s *SQL) Lease(ctx context.Context, a netip.Addr) (*store.Lease, error) {
	a = a.Unmap()
	t := tableOf(a)
	l, err := scanLease(s.db.QueryRowContext(ctx, s.rebind(`SELECT `+leaseCols+` FROM `+t.name+` WHERE num = ?`), t.key(a)))
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
// durable (SQLite commits with synchronous=FULL), so the caller may answer.
//
// Every bind is a conditional write (an upsert whose WHERE is the
// ownership rule, store.LeaseOp.CanBind), so two servers sharing one
// PostgreSQL database cannot hand one address to two clients
// (coredhcp#142): the loser's bind fails with ErrAddressTaken.
func (s *SQL) CommitLeases(ctx context.Context, ops []store.LeaseOp) ([]store.LeaseResult, error) {
	for i := range ops {
		ops[i].Addr = ops[i].Addr.Unmap()
	}
	var res []store.LeaseResult
	var err error
	// A whole-batch failure is usually a write conflict with another
	// writer (a PostgreSQL serialization failure or deadlock): retrying
	// the batch is safe because nothing of it was committed.
	for attempt := 0; attempt < 8; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(time.Duration(attempt) * time.Millisecond):
			}
		}
		res = make([]store.LeaseResult, len(ops))
		err = s.txOnce(ctx, func(stx *sql.Tx) error {
			return s.applyLeases(ctx, &leaseTx{tx: stx, stmts: map[string]*sql.Stmt{}}, ops, res)
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
// batch runs the same few statements many times.
type leaseTx struct {
	tx    *sql.Tx
	stmts map[string]*sql.Stmt
	// reserved maps the batch's addresses to the host each is reserved
	// for ("" for none), read once per batch.
	reserved map[string]string
}

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

// applyLeases applies ops in order. Runs of plain binds to distinct
// addresses of one family (what a boot storm's REQUESTs are) are written
// with one multi-row upsert each: they touch different rows, so their
// order does not matter, and one statement to parse instead of hundreds is
// most of a batch's cost.
func (s *SQL) applyLeases(ctx context.Context, tx *leaseTx, ops []store.LeaseOp, res []store.LeaseResult) error {
	if err := s.loadReserved(ctx, tx, batchAddrs(ops)); err != nil {
		return err
	}
	var run []int // indexes of the binds waiting to be written
	inRun := map[netip.Addr]bool{}
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
		batchable := op.Kind == store.LeaseBind && !op.Reserved && !inRun[op.Addr] && len(run) < maxBindRun &&
			(len(run) == 0 || store.Family(ops[run[0]].Addr) == store.Family(op.Addr))
		if !batchable {
			if err := flush(); err != nil {
				return err
			}
		}
		if err := s.bindable(ctx, tx, op); err != nil {
			if !isLeaseErr(err) {
				return err
			}
			res[i] = store.LeaseResult{Err: err}
			continue
		}
		if op.Kind == store.LeaseBind && !op.Reserved {
			run = append(run, i)
			inRun[op.Addr] = true
			continue
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
// the square of its parameters (9 per row), and 64 rows keep that below
// the parsing it saves.
const maxBindRun = 64

// bindable checks what a bind needs before its write: the address is in
// the pool (or reserved for the client) and not another host's
// reservation.
func (s *SQL) bindable(ctx context.Context, tx *leaseTx, op *store.LeaseOp) error {
	if op.Kind != store.LeaseBind || op.Reserved {
		return nil
	}
	if !op.InPool(op.Addr) {
		return fmt.Errorf("bind %s: %w", op.Addr, store.ErrNotInPool)
	}
	other, err := s.reservedForOther(ctx, tx, op.Addr, op.Host)
	if err != nil {
		return err
	}
	if other {
		return fmt.Errorf("%s is reserved for another host: %w", op.Addr, store.ErrAddressTaken)
	}
	return nil
}

// canBind is store.LeaseOp.CanBind in SQL, for an upsert's conflict
// clause: the row is the client's (same client and IA, or same MAC unless
// it is the same client's other IA), or, with reserved, the same host's;
// or it has expired. A declined row has no client, so only its expiry
// frees it.
func canBind(t string, reserved bool) string {
	own := `(` + t + `.client_id <> '' AND ` + t + `.client_id = excluded.client_id AND ` + t + `.iaid = excluded.iaid)
		OR (` + t + `.mac <> '' AND ` + t + `.mac = excluded.mac
			AND NOT (` + t + `.client_id <> '' AND ` + t + `.client_id = excluded.client_id AND ` + t + `.iaid <> excluded.iaid))`
	if reserved {
		own += ` OR (` + t + `.host <> '' AND ` + t + `.host = excluded.host)`
	}
	return own + ` OR ` + t + `.expires <= excluded.updated_at`
}

func upsert(t leaseTable, rows int, reserved bool) string {
	var q strings.Builder
	q.WriteString(`INSERT INTO ` + t.name + ` (num, addr, mac, client_id, iaid, host, state, expires, updated_at) VALUES `)
	for k := 0; k < rows; k++ {
		if k > 0 {
			q.WriteString(", ")
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?)")
	}
	q.WriteString(` ON CONFLICT (num) DO UPDATE SET mac = excluded.mac, client_id = excluded.client_id, iaid = excluded.iaid,
		host = excluded.host, state = excluded.state, expires = excluded.expires, updated_at = excluded.updated_at
		WHERE ` + canBind(t.name, reserved) + ` RETURNING num`)
	return q.String()
}

func bindArgs(args []any, t leaseTable, op *store.LeaseOp) []any {
	return append(args, t.key(op.Addr), op.Addr.String(), op.MAC, op.ClientID, int64(op.IAID), op.Host, store.LeaseBound,
		op.Until.UnixMilli(), op.Now.UnixMilli())
}

// bindMany writes the binds ops[run...] with one upsert, in address order
// (so two servers' batches lock rows in the same order), and learns from
// RETURNING which took their row. One that did not is redone alone, which
// says whose the address is.
func (s *SQL) bindMany(ctx context.Context, tx *leaseTx, ops []store.LeaseOp, run []int, res []store.LeaseResult) error {
	sort.Slice(run, func(a, b int) bool { return ops[run[a]].Addr.Less(ops[run[b]].Addr) })
	t := tableOf(ops[run[0]].Addr)
	args := make([]any, 0, 9*len(run))
	for _, i := range run {
		args = bindArgs(args, t, &ops[i])
	}
	took, err := s.returned(ctx, tx, s.rebind(upsert(t, len(run), false)), args)
	if err != nil {
		return err
	}
	for _, i := range run {
		op := &ops[i]
		if took[fmt.Sprint(t.key(op.Addr))] {
			res[i] = store.LeaseResult{Lease: op.Lease(store.LeaseBound)}
			continue
		}
		l, err := s.bind(ctx, tx, op)
		if err != nil && !isLeaseErr(err) {
			return err
		}
		res[i] = store.LeaseResult{Lease: l, Err: err}
	}
	return nil
}

// returned runs an upsert and collects the keys its RETURNING gave, as
// text (the IPv4 key is an integer, the IPv6 one text).
func (s *SQL) returned(ctx context.Context, tx *leaseTx, q string, args []any) (map[string]bool, error) {
	rows, err := tx.tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	took := map[string]bool{}
	for rows.Next() {
		var k any
		if err := rows.Scan(&k); err != nil {
			return nil, err
		}
		if b, ok := k.([]byte); ok {
			k = string(b)
		}
		took[fmt.Sprint(k)] = true
	}
	return took, rows.Err()
}

func isLeaseErr(err error) bool {
	return errors.Is(err, store.ErrNoAddress) || errors.Is(err, store.ErrAddressTaken) ||
		errors.Is(err, store.ErrNotInPool) || errors.Is(err, store.ErrNotFound)
}

func (s *SQL) applyLease(ctx context.Context, tx *leaseTx, op *store.LeaseOp) (store.Lease, error) {
	switch op.Kind {
	case store.LeaseBind:
		return s.bind(ctx, tx, op)
	case store.LeaseRelease, store.LeaseDecline:
		return s.giveBack(ctx, tx, op)
	}
	return store.Lease{}, fmt.Errorf("lease op %d: unknown kind", op.Kind)
}

func (s *SQL) leaseAt(ctx context.Context, tx *leaseTx, a netip.Addr) (*store.Lease, error) {
	t := tableOf(a)
	st, err := tx.stmt(ctx, s.rebind(`SELECT `+leaseCols+` FROM `+t.name+` WHERE num = ?`))
	if err != nil {
		return nil, err
	}
	l, err := scanLease(st.QueryRowContext(ctx, t.key(a)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// reservedForOther reports whether a is some other host's reservation, which
// the pool must never hand out. The owners of a batch's addresses are read
// once, with the batch (loadReserved); an address not read then is read
// alone.
func (s *SQL) reservedForOther(ctx context.Context, tx *leaseTx, a netip.Addr, host string) (bool, error) {
	key := a.String()
	owner, ok := tx.reserved[key]
	if !ok {
		if err := s.loadReserved(ctx, tx, []any{key}); err != nil {
			return false, err
		}
		owner = tx.reserved[key]
	}
	return owner != "" && owner != host, nil
}

// loadReserved reads which hosts' reservations addrs (address strings)
// are, "" for none, in statements of at most maxBindRun addresses: only
// the batch's addresses, not every host's (a 100,000-host inventory's
// table is read by no packet).
func (s *SQL) loadReserved(ctx context.Context, tx *leaseTx, addrs []any) error {
	if tx.reserved == nil {
		tx.reserved = map[string]string{}
	}
	for len(addrs) > 0 {
		n := min(len(addrs), maxBindRun)
		for _, a := range addrs[:n] {
			tx.reserved[a.(string)] = ""
		}
		rows, err := tx.tx.QueryContext(ctx, s.rebind(`SELECT addr, host FROM host_addrs WHERE addr IN (?`+strings.Repeat(", ?", n-1)+`)`), addrs[:n]...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var addr, h string
			if err := rows.Scan(&addr, &h); err != nil {
				rows.Close()
				return err
			}
			tx.reserved[addr] = h
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		addrs = addrs[n:]
	}
	return nil
}

// batchAddrs are the addresses of ops' pool binds, each once: those whose
// reservations a batch checks.
func batchAddrs(ops []store.LeaseOp) []any {
	var out []any
	seen := make(map[netip.Addr]bool, len(ops))
	for i := range ops {
		op := &ops[i]
		if op.Kind == store.LeaseBind && !op.Reserved && op.InPool(op.Addr) && !seen[op.Addr] {
			seen[op.Addr] = true
			out = append(out, op.Addr.String())
		}
	}
	return out
}

// bind takes op.Addr for the op's client with one upsert whose condition
// the database checks against the row it locks, so a concurrent server
// cannot slip in between a read and a write. When the row is not ours to
// take it is read, to say whose it is.
func (s *SQL) bind(ctx context.Context, tx *leaseTx, op *store.LeaseOp) (store.Lease, error) {
	t := tableOf(op.Addr)
	q := s.rebind(upsert(t, 1, op.Reserved))
	for try := 0; try < 3; try++ {
		took, err := s.returned(ctx, tx, q, bindArgs(nil, t, op))
		if err != nil {
			return store.Lease{}, err
		}
		if len(took) == 1 {
			return op.Lease(store.LeaseBound), nil
		}
		cur, err := s.leaseAt(ctx, tx, op.Addr)
		if err != nil {
			return store.Lease{}, err
		}
		if cur != nil && !op.CanBind(cur) {
			return store.Lease{}, fmt.Errorf("%s is held by %s until %s: %w", op.Addr, holder(cur), cur.Expires.UTC().Format(time.RFC3339), store.ErrAddressTaken)
		}
		// It changed between our statements (another server): again.
	}
	return store.Lease{}, fmt.Errorf("%s: changed under us repeatedly: %w", op.Addr, store.ErrAddressTaken)
}

func holder(l *store.Lease) string {
	switch {
	case l.MAC != "":
		return l.MAC
	case l.ClientID != "":
		return "client " + l.ClientID
	}
	return "nobody (" + l.State + ")"
}

// giveBack releases or declines an address, but only for the client that
// holds it: a forged RELEASE must not free someone else's address.
func (s *SQL) giveBack(ctx context.Context, tx *leaseTx, op *store.LeaseOp) (store.Lease, error) {
	cur, err := s.leaseAt(ctx, tx, op.Addr)
	if err != nil {
		return store.Lease{}, err
	}
	if cur == nil || !op.CanGiveBack(cur) {
		return store.Lease{}, fmt.Errorf("lease %s of %s: %w", op.Addr, op.MAC+op.ClientID, store.ErrNotFound)
	}
	l := store.GiveBack(*cur, op)
	t := tableOf(op.Addr)
	st, err := tx.stmt(ctx, s.rebind(`UPDATE `+t.name+` SET mac = ?, client_id = ?, iaid = ?, host = ?, state = ?, expires = ?, updated_at = ? WHERE num = ?`))
	if err != nil {
		return store.Lease{}, err
	}
	_, err = st.ExecContext(ctx, l.MAC, l.ClientID, int64(l.IAID), l.Host, l.State, l.Expires.UnixMilli(), l.UpdatedAt.UnixMilli(), t.key(op.Addr))
	if err != nil {
		return store.Lease{}, err
	}
	return l, nil
}
