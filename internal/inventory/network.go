package inventory

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
