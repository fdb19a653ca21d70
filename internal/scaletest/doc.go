// Package scaletest holds kickstand's scale-out acceptance tests (issue 8):
// two kickstand DHCP servers, each a separate process in its own network
// namespace, sharing one PostgreSQL lease store, with thousands of clients
// split between them; and the same while PostgreSQL crashes and restarts.
//
// The package has no code of its own; everything is in its tests. The
// clients are a relay agent written here (insomniacslk/dhcp packets), not
// perfdhcp: perfdhcp draws its MACs at random and reports rates, while
// these tests must know, for each of a fixed set of clients, which address
// it was ACKed, so that "every client got a lease" and "no address went to
// two clients" are checked per client against the lease table.
package scaletest
