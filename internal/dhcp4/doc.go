// Package dhcp4 is kickstand's DHCPv4 server: a full server (reservations,
// an optional dynamic pool, the whole DORA/renew/rebind/release/decline/
// inform cycle, relays) or a proxyDHCP beside someone else's DHCP server
// (boot options only, on ports 67 and 4011).
//
// Design, and why:
//
//   - Off by default. Serve only waits unless the config enables DHCP and
//     names interfaces; each socket is bound to its interface with
//     SO_BINDTODEVICE, so kickstand never answers on a network it was not
//     told about. A DHCP server that starts by itself on a LAN is an outage.
//
//   - Parse once, decide elsewhere. Each packet is parsed once, by
//     ParseFacts, into boot.Facts (MAC, option 93 arch, 60 vendor class, 77
//     user class, 97 UUID, 175 iPXE, giaddr, the local address). What the
//     machine boots is the boot package's answer to those facts
//     (Booter.BootSpec), the same answer TFTP and HTTP get, so the three
//     cannot disagree; this package only encodes Plan.BootFile into siaddr,
//     file and options 66/67, and echoes "PXEClient" or "HTTPClient" in
//     option 60 because firmware ignores offers that do not. A client that
//     does not present itself as boot firmware is not asked about at all.
//
//   - The machinery is shared with DHCPv6 (package dhcpengine): bounded
//     queue and workers, rate limits of unreserved clients, offers chosen
//     in memory, binds committed (fsync'd, group-committed) before the ACK
//     leaves and arbitrated by the store between servers, store-down mode,
//     reservations, events and metrics. This package parses packets into
//     facts, answers each message type and encodes replies.
//
//   - Leases are keyed by MAC as well as client-id, so Anaconda's second
//     DHCP, with a new xid and maybe a new client-id, gets the same
//     address.
//
//   - In proxy mode the addresses clients take from the other server are
//     reported as observed bindings (the ciaddr of a request to port 4011,
//     a REQUEST's option 50), never as leases.
//
//   - Replies go where they can arrive: to the relay's port 67 when giaddr
//     is set (smee#382), unicast to a client that already has an address,
//     broadcast otherwise. Option 82 is echoed verbatim. There is no ping
//     check before an offer: it costs iPXE about 13 s per boot.
//
//   - Reservations are the boot package's host index (boot.Booter.Match),
//     the one the boot decision identifies clients by, answered from
//     memory, so a packet costs no store query for them.
//
// The interfaces, their addresses and the mode's sockets are read when Serve
// starts; subnets, options and reservations follow config reloads.
package dhcp4
