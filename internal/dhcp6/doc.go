// Package dhcp6 is kickstand's DHCPv6 server: stateful IA_NA addresses
// (reservations and an optional pool) with the whole Solicit/Advertise/
// Request/Reply, Renew/Rebind, Release/Decline, Confirm and
// Information-request cycle, Rapid Commit, relays, and the RFC 5970 boot
// options that UEFI PXE, UEFI HTTP boot and iPXE read over IPv6.
//
// Design, and why (the DHCPv4 server's design, with IPv6's differences):
//
//   - Off by default. Serve only waits unless the config enables DHCPv6
//     and names interfaces. Each interface gets its own [::]:547 socket,
//     bound to it with SO_BINDTODEVICE and joined to ff02::1:2 there, so
//     kickstand never answers on a link it was not told about.
//
//   - Reservations by MAC, although DHCPv6 identifies clients by DUID.
//     Inventories list MACs (Foreman and MAAS cannot match a DHCPv6 client
//     to one), so ParseFacts finds the MAC in relay option 79 (RFC 6939),
//     in a DUID-LL or DUID-LLT, or in an EUI-64 link-local source address,
//     and a DUID-UUID gives the SMBIOS UUID (EDK2 byte order). The
//     dhcp6.duids config ties any other DUID to a host. The facts go to
//     the boot package's host index as the packet gave them: it finds the
//     host by UUID, MAC or reserved DUID, for the reservation and for the
//     boot decision alike, from memory.
//
//   - Parse once, decide elsewhere. The packet becomes boot.Facts (Family
//     6, DUID, MAC, option 61 arch, 16 vendor class, 15 user class, the
//     relay's link-address, the server address) and the boot package
//     decides; this package only encodes Plan.BootFile, already a full
//     tftp://[addr]/ or http://[addr]/ URL, into option 59, adds option 60
//     from the subnet's boot_params, and echoes the "HTTPClient" vendor
//     class (enterprise 343) that UEFI HTTP boot requires. It never hands
//     out a gateway: DHCPv6 has no such option, routers advertise.
//
//   - The machinery is DHCPv4's (package dhcpengine): bounded queue and
//     workers, per-DUID and global rate limits of unreserved clients, the
//     store-down mode, reservations, events and metrics. An Advertise is
//     chosen in memory and written nowhere; the addresses of a Reply are
//     committed (fsync'd, group-committed) before it leaves.
//
//   - Addresses are chosen in memory (dhcpengine): the reservation, else
//     the client's previous address (its IA, or its MAC under another
//     DUID, so firmware, iPXE and the installer keep one address), else
//     the one it asked for, else a free one. A Request, Renew or Rebind
//     may get another address than it named; the named ones then go back
//     with zero lifetimes. The store arbitrates the bind: an address
//     another server took meanwhile is chosen again.
//
//   - Replies go back the way the request came: to the client's port 546,
//     or wrapped in one relay-reply per relay (hop count, link and peer
//     address and Interface-Id copied) to the relay's port 547.
//
//   - Server identifier: DUID-LL of the first served interface, so it is
//     the same after a restart and clients' Renew and Release still match.
package dhcp6
