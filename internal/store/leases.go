package store

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"time"
)

// Lease states. A lease row is never deleted: an expired, released or
// declined row is what lets an address be reused, and the client it keeps
// gives a returning client its old address back.
const (
	LeaseOffered  = "offered"  // held in a DHCP server's memory between an offer and the bind; never stored
	LeaseBound    = "bound"    // ACKed (DHCPv4) or Replied (DHCPv6)
	LeaseReleased = "released" // given back by the client
	LeaseDeclined = "declined" // the client found it in use: quarantined until Expires
)

// Lease is one address, IPv4 or IPv6, and who holds it until when. Both
// families share the type, the rules and the code; each has its own table.
type Lease struct {
	Addr netip.Addr
	MAC  string // the client's link-layer address, when known
	// ClientID is the client's identifier in hex: DHCPv4 option 61, or the
	// DHCPv6 DUID. Empty when a DHCPv4 client sent none.
	ClientID string
	// IAID names a DHCPv6 identity association: one client may hold one
	// address per IA. Always 0 on DHCPv4.
	IAID      uint32
	Host      string // the inventory host, when the client is one
	State     string
	Expires   time.Time // DHCPv6: the end of the valid lifetime
	UpdatedAt time.Time
}

// Active reports whether the lease still holds its address at now.
func (l Lease) Active(now time.Time) bool { return now.Before(l.Expires) }

// LeaseOpKind is what a LeaseOp asks for.
type LeaseOpKind int

const (
	// LeaseBind binds Addr to the client until Until, if the address is
	// free, expired or already the client's. Which address to bind is the
	// DHCP server's choice (made in its memory); the store only arbitrates,
	// so that servers sharing one database never give one address twice.
	LeaseBind LeaseOpKind = iota + 1
	// LeaseRelease gives Addr back, for its holder only.
	LeaseRelease
	// LeaseDecline quarantines Addr until Until: something else answers
	// for it, so handing it out again would break two machines.
	LeaseDecline
)

// LeaseOp is one lease change. CommitLeases applies a batch of them in one
// transaction, which is how the DHCP servers group-commit.
type LeaseOp struct {
	Kind     LeaseOpKind
	Addr     netip.Addr
	MAC      string
	ClientID string
	IAID     uint32
	Host     string
	// Reserved says Addr is Host's reservation: the pool does not apply,
	// and a row of the same host (its other NIC or DUID) may be taken over.
	Reserved bool
	// PoolFirst and PoolLast bound the dynamic pool a bind must fall in
	// unless Reserved; invalid when the subnet has reservations only.
	PoolFirst, PoolLast netip.Addr
	Until               time.Time
	Now                 time.Time
}

// Errors a single LeaseOp can fail with; the DHCP servers turn them into a
// NAK or a NoAddrsAvail. Other errors fail the whole batch.
var (
	ErrNoAddress    = errors.New("no free address in the pool")
	ErrAddressTaken = errors.New("address held by another client")
	ErrNotInPool    = errors.New("address not in the pool")
)

// LeaseResult is the outcome of one LeaseOp.
type LeaseResult struct {
	Lease Lease
	Err   error
}

// InPool reports whether a is inside the op's dynamic pool.
func (op *LeaseOp) InPool(a netip.Addr) bool {
	return op.PoolFirst.IsValid() && op.PoolLast.IsValid() && a.BitLen() == op.PoolFirst.BitLen() &&
		!a.Less(op.PoolFirst) && !op.PoolLast.Less(a)
}

// Owns reports whether a lease belongs to the op's client:
//   - the same client identifier and IA;
//   - or the same MAC, unless it is the same client's other IA: Anaconda's
//     second DHCPv4 may send another client-id, and on DHCPv6 firmware,
//     iPXE and the installed system present different DUIDs, yet each must
//     get the machine's address back;
//   - or, for a reservation, the same host.
//
// A declined row has no client, so only its expiry frees it.
func (op *LeaseOp) Owns(l *Lease) bool {
	sameClient := l.ClientID != "" && l.ClientID == op.ClientID
	switch {
	case sameClient && l.IAID == op.IAID:
		return true
	case l.MAC != "" && l.MAC == op.MAC && !(sameClient && l.IAID != op.IAID):
		return true
	}
	return op.Reserved && l.Host != "" && l.Host == op.Host
}

// Lease is what op makes of the lease it binds.
func (op *LeaseOp) Lease(state string) Lease {
	return Lease{Addr: op.Addr, MAC: op.MAC, ClientID: op.ClientID, IAID: op.IAID, Host: op.Host, State: state,
		Expires: time.UnixMilli(op.Until.UnixMilli()), UpdatedAt: time.UnixMilli(op.Now.UnixMilli())}
}

// GiveBack is what a release or decline makes of a lease row. A released
// row keeps its client, so it gets the same address when it returns; a
// declined one is nobody's until its quarantine ends.
func GiveBack(cur Lease, op *LeaseOp) Lease {
	cur.UpdatedAt = time.UnixMilli(op.Now.UnixMilli())
	if op.Kind == LeaseRelease {
		cur.State, cur.Expires = LeaseReleased, cur.UpdatedAt
		return cur
	}
	cur.State, cur.Expires = LeaseDeclined, time.UnixMilli(op.Until.UnixMilli())
	cur.ClientID, cur.IAID, cur.MAC, cur.Host = "", 0, "", ""
	return cur
}

// CanGiveBack reports whether op may release or decline cur: only its
// holder may, so a forged RELEASE cannot free someone else's address.
func (op *LeaseOp) CanGiveBack(cur *Lease) bool {
	return op.Owns(cur) && cur.State != LeaseDeclined
}

// CanBind reports whether op may take cur's address at op.Now: the row is
// the client's own (and not declined), or it has expired.
func (op *LeaseOp) CanBind(cur *Lease) bool {
	return !cur.Active(op.Now) || (op.Owns(cur) && cur.State != LeaseDeclined)
}

// Family is 4 or 6, the address family of a.
func Family(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 4
	}
	return 6
}

// AddrNum is an IPv4 address as an integer, the leases table's key.
func AddrNum(a netip.Addr) int64 {
	b := a.As4()
	return int64(b[0])<<24 | int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3])
}

// Addr6Key is an IPv6 address as the fixed-width hex text the leases6 table
// keys, orders and ranges on (text comparison is then numeric order, in
// SQLite and PostgreSQL alike).
func Addr6Key(a netip.Addr) string {
	b := a.As16()
	return hex.EncodeToString(b[:])
}
