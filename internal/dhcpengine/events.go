package dhcpengine

import (
	"net/netip"
	"time"
)

// EventKind names a step of a DHCP exchange.
type EventKind string

// The steps of both families' exchanges.
const (
	EventDiscover  EventKind = "discover"  // DHCPv4
	EventOffer     EventKind = "offer"     // DHCPv4
	EventAck       EventKind = "ack"       // DHCPv4: address bound
	EventNak       EventKind = "nak"       // DHCPv4
	EventInform    EventKind = "inform"    // DHCPv4 DHCPINFORM
	EventSolicit   EventKind = "solicit"   // DHCPv6
	EventAdvertise EventKind = "advertise" // DHCPv6
	EventReply     EventKind = "reply"     // DHCPv6: addresses bound (Request, Renew, Rebind, Rapid Commit)
	EventRenew     EventKind = "renew"     // DHCPv6
	EventRebind    EventKind = "rebind"    // DHCPv6
	EventConfirm   EventKind = "confirm"   // DHCPv6
	EventInfoReq   EventKind = "information-request"
	EventRequest   EventKind = "request"
	EventRelease   EventKind = "release"
	EventDecline   EventKind = "decline"
)

// Binding says what an event proves about an address.
type Binding int

const (
	// NoBinding: the event binds no address to the client.
	NoBinding Binding = iota
	// Committed: this server bound IP to the client and the lease is
	// durable (a DHCPv4 ACK, a DHCPv6 Reply).
	Committed
	// Observed: the client uses IP by what it said, under another
	// server's lease (proxyDHCP: the ciaddr of a request to port 4011, the
	// requested address of a REQUEST to the other server). Not proven by
	// us: weigh it accordingly.
	Observed
)

func (b Binding) String() string {
	switch b {
	case Committed:
		return "committed"
	case Observed:
		return "observed"
	}
	return ""
}

// Event is one step of a machine's DHCP exchange, for the lifecycle and
// its timeline.
type Event struct {
	Time   time.Time
	Family int // 4 or 6
	Kind   EventKind
	MAC    string     // when known
	DUID   string     // DHCPv6 client identifier, hex
	IP     netip.Addr // the address offered, bound, requested or given back
	// Binding says whether IP is now the client's, and on whose word.
	Binding Binding
	Host    string     // the inventory host, when the client is one
	Relay   netip.Addr // giaddr, or the link-address of the relay nearest the client
	// BootFile is what the client was told to boot, if anything.
	BootFile string
	// Reason says why a request was refused (a NAK, no address), or why
	// a known host got no boot options.
	Reason string
}
