package store

import (
	"errors"
	"net/netip"
	"time"
)

// Lease states. A lease row is never deleted: an expired, released or
// declined row is what lets an address be reused, and the MAC it keeps
// gives a returning client its old address back.
const (
	LeaseOffered  = "offered"  // held briefly between OFFER and REQUEST
	LeaseBound    = "bound"    // ACKed
	LeaseReleased = "released" // given back by the client
	LeaseDeclined = "declined" // the client found it in use: quarantined until Expires
)

// Lease is one IPv4 address and who holds it until when.
type Lease struct {
	Addr      netip.Addr
	MAC       string
	ClientID  string // option 61, hex; empty when the client sent none
	Host      string // the inventory host, when the client is one
	State     string
	Expires   time.Time
	UpdatedAt time.Time
}

// Active reports whether the lease still holds its address at now.
func (l Lease) Active(now time.Time) bool { return now.Before(l.Expires) }

// LeaseOpKind is what a LeaseOp asks for.
type LeaseOpKind int

const (
	// LeaseOffer picks an address for the client and holds it until Until:
	// the reservation, else the client's previous address, else the one it
	// asked for, else a free one from the pool.
	LeaseOffer LeaseOpKind = iota + 1
	// LeaseBind binds Addr to the client until Until (REQUEST -> ACK).
	LeaseBind
	// LeaseRelease gives Addr back.
	LeaseRelease
	// LeaseDecline quarantines Addr until Until: something else answers ARP
	// for it, so handing it out again would break two machines.
	LeaseDecline
)

// LeaseOp is one lease change. CommitLeases applies a batch of them in one
// transaction, which is how the DHCP server group-commits.
type LeaseOp struct {
	Kind     LeaseOpKind
	MAC      string
	ClientID string
	Host     string
	// Addr is the address to bind, release or decline; for an offer, the
	// address the client asked for (a hint) or its reservation.
	Addr netip.Addr
	// Reserved says Addr is the client's reservation: the client gets
	// exactly that address or nothing, and the pool is not used.
	Reserved bool
	// PoolFirst and PoolLast bound the dynamic pool; invalid when the
	// subnet has reservations only.
	PoolFirst, PoolLast netip.Addr
	Until               time.Time
	Now                 time.Time
}

// Errors a single LeaseOp can fail with; the DHCP server turns them into a
// NAK or silence. Other errors fail the whole batch.
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
	return op.PoolFirst.IsValid() && op.PoolLast.IsValid() && a.Is4() &&
		!a.Less(op.PoolFirst) && !op.PoolLast.Less(a)
}

// Owns reports whether a stored lease belongs to the op's client. The MAC
// alone is enough: Anaconda's second DHCP may send another client-id but
// must get the same address.
func (op *LeaseOp) Owns(l *Lease) bool {
	return (l.MAC != "" && l.MAC == op.MAC) || (l.ClientID != "" && l.ClientID == op.ClientID)
}

// AddrNum is an IPv4 address as an integer, the column ranges and order use.
func AddrNum(a netip.Addr) int64 {
	b := a.As4()
	return int64(b[0])<<24 | int64(b[1])<<16 | int64(b[2])<<8 | int64(b[3])
}

// NumAddr is the inverse of AddrNum.
func NumAddr(n int64) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}
