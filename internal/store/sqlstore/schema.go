package sqlstore

// migrations are applied in order, each once, recorded in schema_version.
// Append only: never edit a migration that has shipped.
var migrations = []string{
	`CREATE TABLE distros (name TEXT PRIMARY KEY, origin TEXT NOT NULL, spec TEXT NOT NULL);
	 CREATE TABLE profiles (name TEXT PRIMARY KEY, origin TEXT NOT NULL, spec TEXT NOT NULL);
	 CREATE TABLE hosts (
		name TEXT PRIMARY KEY, origin TEXT NOT NULL, spec TEXT NOT NULL,
		uuid TEXT, state TEXT NOT NULL, declared_state TEXT NOT NULL,
		token TEXT, token_expires BIGINT NOT NULL DEFAULT 0, updated_at BIGINT NOT NULL);
	 CREATE UNIQUE INDEX hosts_token ON hosts (token);
	 CREATE INDEX hosts_uuid ON hosts (uuid);
	 CREATE TABLE host_macs (mac TEXT PRIMARY KEY, host TEXT NOT NULL);
	 CREATE TABLE host_addrs (addr TEXT PRIMARY KEY, host TEXT NOT NULL);`,
	// 2: DHCPv4 leases. num is the address as an integer (ranges, order,
	// uniqueness); addr is the same address for people reading the table.
	`CREATE TABLE leases (
		num BIGINT PRIMARY KEY, addr TEXT NOT NULL,
		mac TEXT NOT NULL, client_id TEXT NOT NULL, host TEXT NOT NULL,
		state TEXT NOT NULL, expires BIGINT NOT NULL, updated_at BIGINT NOT NULL);
	 CREATE INDEX leases_mac ON leases (mac);
	 CREATE INDEX leases_client_id ON leases (client_id);
	 CREATE INDEX leases_expires ON leases (expires);`,
	// 3: the per-host timeline. data is JSON; host is "" for events no host
	// could be matched to (still kept: they are how "unknown machine" shows).
	`CREATE TABLE events (
		id INTEGER PRIMARY KEY, host TEXT NOT NULL, at BIGINT NOT NULL,
		kind TEXT NOT NULL, detail TEXT NOT NULL, data TEXT NOT NULL);
	 CREATE INDEX events_host ON events (host, id);
	 CREATE INDEX events_at ON events (at);`,
	// 4: REST API tokens. hash is the hex SHA-256 of the secret; the
	// secret itself is shown once, by `kickstand token create`.
	`CREATE TABLE api_tokens (name TEXT PRIMARY KEY, hash TEXT NOT NULL, created_at BIGINT NOT NULL);
	 CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (hash);`,
	// 5: DHCPv6 leases. num is the address as 32 hex digits, so text order
	// is address order for ranges; addr is the same address for people.
	`CREATE TABLE leases6 (
		num TEXT PRIMARY KEY, addr TEXT NOT NULL,
		duid TEXT NOT NULL, iaid BIGINT NOT NULL, mac TEXT NOT NULL, host TEXT NOT NULL,
		state TEXT NOT NULL, expires BIGINT NOT NULL, updated_at BIGINT NOT NULL);
	 CREATE INDEX leases6_duid ON leases6 (duid, iaid);
	 CREATE INDEX leases6_mac ON leases6 (mac);
	 CREATE INDEX leases6_expires ON leases6 (expires);`,
	// 6: sync and host removal look lookup rows up by host; without these
	// a sync of n hosts was O(n^2).
	`CREATE INDEX host_macs_host ON host_macs (host);
	 CREATE INDEX host_addrs_host ON host_addrs (host);`,
	// 7: the last state of hosts removed from the file, so that a host
	// removed and restored resumes it instead of reinstalling.
	`CREATE TABLE retired_hosts (
		name TEXT PRIMARY KEY, state TEXT NOT NULL, declared_state TEXT NOT NULL,
		retired_at BIGINT NOT NULL);
	 CREATE INDEX hosts_updated_at ON hosts (updated_at);`,
	// 8: one lease model for both families (store.Lease): leases gets the
	// DHCPv6 IAID column (always 0), leases6's duid is its client_id. The
	// DHCP servers choose addresses in memory and only bind by address, so
	// the indexes the store's own address search used go: each was one
	// more B-tree insert per bind.
	`ALTER TABLE leases ADD COLUMN iaid BIGINT NOT NULL DEFAULT 0;
	 ALTER TABLE leases6 RENAME COLUMN duid TO client_id;
	 DROP INDEX leases_mac;
	 DROP INDEX leases_client_id;
	 DROP INDEX leases_expires;
	 DROP INDEX leases6_duid;
	 DROP INDEX leases6_mac;
	 DROP INDEX leases6_expires;`,
	// 9: a server sharing the store (PostgreSQL) looks up, by MAC, a
	// client it has not seen: its lease may be another server's (one that
	// died, for instance), and it must be offered that address back.
	`CREATE INDEX leases_mac ON leases (mac);
	 CREATE INDEX leases6_mac ON leases6 (mac);`,
}
