package store

import (
	"errors"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

// ErrFull is returned when a discovered machine is refused because the
// store holds as many as it may (discovery.max_machines).
var ErrFull = errors.New("discovered machines are at their cap")

// Discovered is a machine kickstand does not know that reported itself from
// iPXE (menu.unknown: discover). It is not a host: only an assignment, by
// an operator or a rule, turns it into one.
type Discovered struct {
	MAC string `json:"mac"`
	// Proof says where the MAC came from: "lease" (kickstand's DHCP lease
	// of the reporting address) or "claimed" (the report alone).
	Proof        string    `json:"proof"`
	Addr         string    `json:"addr"` // the address the report came from
	UUID         string    `json:"uuid,omitempty"`
	Manufacturer string    `json:"manufacturer,omitempty"`
	Product      string    `json:"product,omitempty"`
	Serial       string    `json:"serial,omitempty"`
	Asset        string    `json:"asset,omitempty"`
	Chip         string    `json:"chip,omitempty"`      // the NIC's driver chip
	BuildArch    string    `json:"buildarch,omitempty"` // iPXE's build: i386, x86_64, arm64
	Platform     string    `json:"platform,omitempty"`  // pcbios or efi
	Memory       string    `json:"memory,omitempty"`    // ${memsize} MiB, where iPXE has it
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	Reports      int       `json:"reports"`
	// Host is the host it was assigned to; "" while it waits.
	Host string `json:"host,omitempty"`
}

// Assignment turns a discovered machine into a live host in install.
type Assignment struct {
	MAC  string
	Host inventory.Host
	// Transition is the new host's state: install, with its token.
	Transition Transition
	Now        time.Time
}

// DiscoveryLimits bound ReportDiscovered.
type DiscoveryLimits struct {
	Max int // machines kept at most
	// StaleBefore: machines last seen before it give their place to a
	// new one when the store is full.
	StaleBefore time.Time
}
