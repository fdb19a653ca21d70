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
//   - Bounded work. One reader per socket feeds a bounded queue served by
//     Config().DHCP.Workers goroutines. When the queue is full the packet is
//     dropped and counted (Stats.Dropped): the client retransmits, while an
//     unbounded goroutine per packet made every reply late under load
//     (smee#21).
//
//   - ACK after commit, with group commit. A lease is in the store, fsync'd
//     (SQLite WAL, synchronous=FULL), before its ACK leaves, so a kill -9 or
//     power cut never forgets an address a client was told it holds. An
//     OFFER promises nothing, so offers are chosen in memory and not
//     written: a lost offer costs the client one retransmission. One fsync
//     per packet would cap the server at the disk's flush rate, so a single
//     committer collects the leases that arrive within about a millisecond
//     (or up to a batch limit), commits them in one transaction and then
//     releases every waiting ACK.
//
//   - Allocation checked in the store. The bind re-checks the address
//     inside that transaction with conditional writes, so two
//     kickstand servers sharing a PostgreSQL store cannot give one address
//     to two clients (coredhcp#142). Leases are keyed by MAC as well as
//     client-id, so Anaconda's second DHCP, with a new xid and maybe a new
//     client-id, gets the same address.
//
//   - Replies go where they can arrive: to the relay's port 67 when giaddr
//     is set (smee#382), unicast to a client that already has an address,
//     broadcast otherwise. Option 82 is echoed verbatim. There is no ping
//     check before an offer: it costs iPXE about 13 s per boot.
//
//   - Reservations come from an in-memory index of the store's hosts (MAC ->
//     host, IPv4 address), rebuilt on a config reload and at most every few
//     seconds otherwise, so a packet costs no store query for them.
//
// The interfaces, their addresses and the mode's sockets are read when Serve
// starts; subnets, options and reservations follow config reloads.
package dhcp4
