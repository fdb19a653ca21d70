package store

import (
	"encoding/hex"
	"net/netip"
	"time"
)

// Lease6 is one IPv6 address (DHCPv6 IA_NA) and who holds it until when.
// The states are the DHCPv4 ones (LeaseOffered, LeaseBound, ...): an
// Advertise holds an address briefly, a Reply binds it.
type Lease6 struct {
	Addr netip.Addr
	// DUID (hex) and IAID name the client's identity association: one
	// client may hold one address per IA.
	DUID string
	IAID uint32
	// MAC is the client's link-layer address when known (DUID-LL/LLT,
	// relay option 79, an EUI-64 link-local address); it lets the same
	// machine keep its address when firmware, iPXE and the installed
	// system each present a different DUID.
	MAC       string
	Host      string
	State     string
	Expires   time.Time // end of the valid lifetime
	UpdatedAt time.Time
}

// Active reports whether the lease still holds its address at now.
func (l Lease6) Active(now time.Time) bool { return now.Before(l.Expires) }

// Lease6Op is one IPv6 lease change; CommitLeases6 applies a batch of them
// in one transaction (the DHCPv6 server's group commit).
//
// LeaseOffer and LeaseBind both choose the address: the reservation when
// Reserved (that address or nothing); else the client's previous address in
// the pool; else Addr, the address the client asked for or holds; else a
// free one. An offer holds it until Until; a bind binds it. Unlike DHCPv4,
// a DHCPv6 server may answer a Request, Renew or Rebind with another
// address than the one asked for, so a bind is a choice too.
// LeaseRelease and LeaseDecline act on Addr, for its holder only.
type Lease6Op struct {
	Kind     LeaseOpKind
	DUID     string
	IAID     uint32
	MAC      string
	Host     string
	Addr     netip.Addr
	Reserved bool
	// PoolFirst and PoolLast bound the dynamic pool; invalid when the
	// subnet has reservations only.
	PoolFirst, PoolLast netip.Addr
	Until               time.Time
	Now                 time.Time
}

// Lease6Result is the outcome of one Lease6Op.
type Lease6Result struct {
	Lease Lease6
	Err   error
}

// InPool reports whether a is inside the op's dynamic pool.
func (op *Lease6Op) InPool(a netip.Addr) bool {
	return op.PoolFirst.IsValid() && op.PoolLast.IsValid() && a.Is6() && !a.Is4In6() &&
		!a.Less(op.PoolFirst) && !op.PoolLast.Less(a)
}

// Owns reports whether a stored lease belongs to the op's client: the same
// IA; or the same MAC under another DUID (the next boot stage of the same
// machine; one client's second IA shares its DUID and does not match); or,
// for a reservation, the same host.
func (op *Lease6Op) Owns(l *Lease6) bool {
	switch {
	case l.DUID != "" && l.DUID == op.DUID && l.IAID == op.IAID:
		return true
	case l.MAC != "" && l.MAC == op.MAC && l.DUID != op.DUID:
		return true
	}
	return op.Reserved && l.Host != "" && l.Host == op.Host
}

// Addr6Key is an IPv6 address as the fixed-width hex text the leases6 table
// keys, orders and ranges on (text comparison is then numeric order, in
// SQLite and PostgreSQL alike).
func Addr6Key(a netip.Addr) string {
	b := a.As16()
	return hex.EncodeToString(b[:])
}

// GiveBack6 is what a release or decline makes of a lease row. A released
// row keeps its DUID and MAC, so the client gets the same address when it
// returns; a declined one is nobody's until its quarantine ends.
func GiveBack6(cur Lease6, op *Lease6Op) Lease6 {
	cur.UpdatedAt = time.UnixMilli(op.Now.UnixMilli())
	if op.Kind == LeaseRelease {
		cur.State, cur.Expires = LeaseReleased, cur.UpdatedAt
		return cur
	}
	cur.State, cur.Expires = LeaseDeclined, time.UnixMilli(op.Until.UnixMilli())
	cur.DUID, cur.IAID, cur.MAC, cur.Host = "", 0, "", ""
	return cur
}
