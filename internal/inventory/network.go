package inventory

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"
)

// DHCP configures the DHCPv4 server. It is off unless enabled and given
// interfaces: a DHCP server that starts by itself on a LAN is an outage.
type DHCP struct {
	Enabled bool `yaml:"enabled" json:"enabled"`
	// Mode is "server" (addresses and boot options) or "proxy" (boot
	// options only, beside an existing DHCP server; ports 67 and 4011).
	Mode       string   `yaml:"mode,omitempty" json:"mode,omitempty"`
	Interfaces []string `yaml:"interfaces,omitempty" json:"interfaces,omitempty"`
	Subnets    []Subnet `yaml:"subnets,omitempty" json:"subnets,omitempty"`
	// Workers bounds concurrent packet handling (smee#21: a goroutine per
	// packet made replies late under load).
	Workers int `yaml:"workers,omitempty" json:"workers,omitempty"`
	// RateLimit bounds clients without a reservation (starvation attacks);
	// reserved hosts are never limited. Zero fields take the defaults.
	RateLimit RateLimit `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
}

// RateLimit is the limit for DHCP clients without a reservation.
type RateLimit struct {
	Off    bool    `yaml:"off,omitempty" json:"off,omitempty"`
	PerMAC float64 `yaml:"per_mac,omitempty" json:"per_mac,omitempty"` // packets/s per MAC (default 2)
	Global float64 `yaml:"global,omitempty" json:"global,omitempty"`   // packets/s in all (default 2000)
}

// Subnet is one IPv4 network kickstand serves, directly or through a relay
// whose giaddr falls inside it.
type Subnet struct {
	Subnet    string   `yaml:"subnet" json:"subnet"`                 // CIDR, e.g. 192.0.2.0/24
	Pool      string   `yaml:"pool,omitempty" json:"pool,omitempty"` // "first-last"; empty: reservations only
	Routers   []string `yaml:"routers,omitempty" json:"routers,omitempty"`
	DNS       []string `yaml:"dns,omitempty" json:"dns,omitempty"`
	Domain    string   `yaml:"domain,omitempty" json:"domain,omitempty"`
	NTP       []string `yaml:"ntp,omitempty" json:"ntp,omitempty"`
	LeaseTime Duration `yaml:"lease_time,omitempty" json:"lease_time,omitempty"`
}

// TFTP configures the TFTP server.
type TFTP struct {
	Enabled bool   `yaml:"enabled" json:"enabled"`
	Listen  string `yaml:"listen,omitempty" json:"listen,omitempty"` // default ":69"
	// MaxTransfers bounds concurrent transfers; excess requests are refused.
	MaxTransfers int `yaml:"max_transfers,omitempty" json:"max_transfers,omitempty"`
}

// Syslog configures the receiver for installer logs (UDP and TCP: Anaconda's
// rsyslog forwards over TCP, util-linux logger and dracut over UDP).
type Syslog struct {
	Enabled bool   `yaml:"enabled" json:"enabled"`
	Listen  string `yaml:"listen,omitempty" json:"listen,omitempty"` // default ":514"
}

// DHCP6 configures the DHCPv6 server. Like DHCPv4 it is off unless enabled
// and given interfaces. It never hands out a gateway: on IPv6 that comes
// from router advertisements.
type DHCP6 struct {
	Enabled    bool      `yaml:"enabled" json:"enabled"`
	Interfaces []string  `yaml:"interfaces,omitempty" json:"interfaces,omitempty"`
	Subnets    []Subnet6 `yaml:"subnets,omitempty" json:"subnets,omitempty"`
	// DUIDs reserve by DUID: the client with that DUID is that host and
	// gets its ipv6 address. Hosts are matched by MAC (from DUID-LL/LLT or
	// relay option 79) and SMBIOS UUID (DUID-UUID) without this; it is for
	// clients whose DUID carries neither.
	DUIDs []DUIDReservation `yaml:"duids,omitempty" json:"duids,omitempty"`
	// Workers bounds concurrent packet handling.
	Workers int `yaml:"workers,omitempty" json:"workers,omitempty"`
	// RateLimit bounds clients without a reservation, as dhcp.rate_limit
	// does for DHCPv4; per_mac counts per DUID here.
	RateLimit RateLimit `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
}

// DUIDReservation ties a DHCPv6 DUID to an inventory host.
type DUIDReservation struct {
	DUID string `yaml:"duid" json:"duid"` // hex, colons optional: 00:03:00:01:52:54:00:12:34:56
	Host string `yaml:"host" json:"host"`
}

// Subnet6 is one IPv6 network kickstand serves, directly (a prefix of an
// interface) or through a relay whose link-address falls inside it.
type Subnet6 struct {
	Prefix string   `yaml:"prefix" json:"prefix"`                 // e.g. 2001:db8::/64
	Pool   string   `yaml:"pool,omitempty" json:"pool,omitempty"` // "first-last"; empty: reservations only
	DNS    []string `yaml:"dns,omitempty" json:"dns,omitempty"`
	// DomainSearch is option 24, the domain search list.
	DomainSearch      []string `yaml:"domain_search,omitempty" json:"domain_search,omitempty"`
	PreferredLifetime Duration `yaml:"preferred_lifetime,omitempty" json:"preferred_lifetime,omitempty"`
	ValidLifetime     Duration `yaml:"valid_lifetime,omitempty" json:"valid_lifetime,omitempty"`
	// BootParams is option 60 (boot file parameters), sent with a boot
	// file URL. EDK2's UEFI PXE reads the first one as the boot file's
	// size in 512-byte blocks and refuses anything else, so UEFI PXE
	// clients get it only when it is such a number.
	BootParams []string `yaml:"boot_params,omitempty" json:"boot_params,omitempty"`
}

func (d *DHCP6) applyDefaults() {
	if d.Workers == 0 {
		d.Workers = 64
	}
	for i := range d.Subnets {
		s := &d.Subnets[i]
		if s.PreferredLifetime == 0 {
			s.PreferredLifetime = Duration(time.Hour)
		}
		if s.ValidLifetime == 0 {
			s.ValidLifetime = Duration(2 * time.Hour)
		}
	}
}

func (v *validator) checkDHCP6(d *DHCP6, hosts []Host) {
	at := func(f ...any) []any { return append([]any{"dhcp6"}, f...) }
	if d.Enabled && len(d.Interfaces) == 0 {
		v.errf(at("interfaces"), "dhcp6 is enabled but names no interfaces: kickstand never serves DHCPv6 on every interface")
	}
	if d.Enabled && len(d.Subnets) == 0 {
		v.errf(at("subnets"), "dhcp6 is enabled but has no subnet")
	}
	v.checkInterfaces(at("interfaces"), d.Interfaces)
	if d.Workers < 0 {
		v.errf(at("workers"), "must be positive")
	}
	for i, s := range d.Subnets {
		at := func(f ...any) []any { return append([]any{"dhcp6", "subnets", i}, f...) }
		pfx, err := netip.ParsePrefix(s.Prefix)
		if err != nil || !pfx.Addr().Is6() || pfx.Addr().Is4In6() {
			v.errf(at("prefix"), "%q is not an IPv6 network such as 2001:db8::/64", s.Prefix)
			continue
		}
		if s.Pool != "" {
			lo, hi, err := ParsePool6(s.Pool)
			switch {
			case err != nil:
				v.errf(at("pool"), "%v", err)
			case !pfx.Contains(lo) || !pfx.Contains(hi):
				v.errf(at("pool"), "pool %s is not inside prefix %s", s.Pool, pfx)
			}
		}
		for j, r := range s.DNS {
			v.checkIP(at("dns", j), r, 6)
		}
		for j, name := range s.DomainSearch {
			if !hostnameRE.MatchString(name) {
				v.errf(at("domain_search", j), "%q is not a domain name", name)
			}
		}
		if s.ValidLifetime < s.PreferredLifetime || s.PreferredLifetime < 0 {
			v.errf(at("valid_lifetime"), "must be at least preferred_lifetime (%s)", time.Duration(s.PreferredLifetime))
		}
	}
	seen := map[string]int{}
	for i, r := range d.DUIDs {
		at := func(f string) []any { return []any{"dhcp6", "duids", i, f} }
		duid := NormalDUID(r.DUID)
		switch {
		case duid == "":
			v.errf(at("duid"), "%q is not a DUID (hex bytes, such as 00:03:00:01:52:54:00:12:34:56)", r.DUID)
		case seen[duid] > 0:
			v.errf(at("duid"), "DUID %s is also reserved by dhcp6.duids[%d]", r.DUID, seen[duid]-1)
		}
		seen[duid] = i + 1
		if !slices.ContainsFunc(hosts, func(h Host) bool { return h.Name == r.Host }) {
			v.errf(at("host"), "unknown host %q", r.Host)
		}
	}
}

// ParsePool6 parses "first-last" into two IPv6 addresses, first <= last.
func ParsePool6(s string) (netip.Addr, netip.Addr, error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := netip.ParseAddr(strings.TrimSpace(a))
	hi, err2 := netip.ParseAddr(strings.TrimSpace(b))
	if !ok || err1 != nil || err2 != nil || !lo.Is6() || !hi.Is6() || lo.Is4In6() || hi.Is4In6() || lo.Zone() != "" || hi.Zone() != "" || hi.Less(lo) {
		return netip.Addr{}, netip.Addr{}, fmt.Errorf("pool %q: want first-last IPv6 addresses, such as 2001:db8::1000-2001:db8::1fff", s)
	}
	return lo, hi, nil
}

// NormalDUID spells a DUID as lower-case hex without separators (the form
// the DHCPv6 server and its leases use), or "" if s is not 3 to 130 bytes
// of hex (RFC 8415: a DUID is 2 bytes of type and up to 128 of data).
func NormalDUID(s string) string {
	h := strings.ToLower(strings.NewReplacer(":", "", "-", "", " ", "").Replace(strings.TrimSpace(s)))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) < 3 || len(b) > 130 {
		return ""
	}
	return h
}
