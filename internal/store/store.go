// Package store keeps kickstand's live state behind one interface, so the
// embedded SQLite store and the shared PostgreSQL one are interchangeable and
// one test suite (storetest) holds them, a fake and a broken store to the
// same contract (matchbox's storage/testfakes model).
//
// This package holds the interface and its types only; the SQL
// implementation and its drivers (SQLite, PostgreSQL) are in sqlstore, so
// that a package that only consumes the store (boot, the DHCP servers,
// timeline) does not link pgx and SQLite, nor wait for them to build.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

// ErrNotFound is returned when an object does not exist. Callers turn it
// into 404s and "unknown host" messages; anything else is a store failure.
var ErrNotFound = errors.New("not found")

// Store is kickstand's state.
type Store interface {
	// SyncDeclared makes the store agree with the YAML file, in one
	// transaction: a failure leaves the previous state untouched.
	SyncDeclared(ctx context.Context, d Declared) (SyncReport, error)

	Host(ctx context.Context, name string) (*inventory.HostRecord, error)
	HostByMAC(ctx context.Context, mac string) (*inventory.HostRecord, error)
	HostByUUID(ctx context.Context, uuid string) (*inventory.HostRecord, error)
	HostByAddr(ctx context.Context, a netip.Addr) (*inventory.HostRecord, error)
	HostByToken(ctx context.Context, token string) (*inventory.HostRecord, error)
	Hosts(ctx context.Context) ([]inventory.HostRecord, error)
	// SetHostState changes a host's netboot state. Only internal/install
	// calls it: it mints the tokens and records the change.
	SetHostState(ctx context.Context, name string, t Transition) (*inventory.HostRecord, error)
	// HostsChangedSince returns the hosts written at or after since
	// (updated_at), and how many hosts there are in all, so that a
	// server's in-memory host index follows writes made by another
	// server sharing the store.
	HostsChangedSince(ctx context.Context, since time.Time) ([]inventory.HostRecord, int, error)

	Profile(ctx context.Context, name string) (*inventory.Profile, error)
	Profiles(ctx context.Context) ([]inventory.Profile, error)
	Distro(ctx context.Context, name string) (*inventory.Distro, error)
	Distros(ctx context.Context) ([]inventory.Distro, error)

	// CommitLeases applies a batch of lease changes, IPv4 or IPv6, in one
	// transaction (a DHCP server's group commit) and returns one result per
	// op. When err is nil every successful op is durable, so the server
	// may answer; a per-op failure (ErrAddressTaken, ErrNotInPool,
	// ErrNotFound) is in that op's result.
	CommitLeases(ctx context.Context, ops []LeaseOp) ([]LeaseResult, error)
	// Lease returns the lease row of one address of either family
	// (ErrNotFound if none).
	Lease(ctx context.Context, addr netip.Addr) (*Lease, error)
	// Leases lists every lease row of one family (4 or 6) in address
	// order.
	Leases(ctx context.Context, family int) ([]Lease, error)

	// RegisterDistro adds or replaces a live distro, and its default
	// profile when p is not nil, in one transaction: an import either
	// registers both or neither. Objects owned by the file are refused.
	RegisterDistro(ctx context.Context, d inventory.Distro, p *inventory.Profile) error

	LiveStore

	// AppendEvents records timeline events durably, in order.
	AppendEvents(ctx context.Context, evs []Event) error
	// Events returns events after afterID in order; host "" means all
	// hosts. limit <= 0 means no limit.
	Events(ctx context.Context, host string, afterID int64, limit int) ([]Event, error)
	// PruneEvents keeps at most keep events per host and none older than
	// before; it returns how many were removed.
	PruneEvents(ctx context.Context, keep int, before time.Time) (int64, error)
	// LastEventID is the newest event's id (0 when there is none).
	LastEventID(ctx context.Context) (int64, error)

	// CreateAPIToken stores a REST API token (ErrExists if the name is
	// taken); APITokens lists them by name, hashes included, for the API
	// to check a presented token against; RevokeAPIToken deletes one
	// (ErrNotFound if there is none of that name).
	CreateAPIToken(ctx context.Context, t APIToken) error
	APITokens(ctx context.Context) ([]APIToken, error)
	RevokeAPIToken(ctx context.Context, name string) error

	// ReportDiscovered adds or refreshes a discovered machine (by MAC),
	// within the limits: a new machine past the cap gets ErrFull, after
	// stale ones were dropped to make room. An assigned machine's report
	// changes nothing but its last_seen. created says it was new.
	ReportDiscovered(ctx context.Context, d Discovered, lim DiscoveryLimits) (created bool, err error)
	// DiscoveredMachines lists the discovered machines by MAC.
	DiscoveredMachines(ctx context.Context) ([]Discovered, error)
	// DiscoveredMachine returns one (ErrNotFound if none).
	DiscoveredMachine(ctx context.Context, mac string) (*Discovered, error)
	// AssignDiscovered creates the live host of an assignment and marks
	// the machine assigned, in one transaction. Only internal/install
	// calls it. ErrNotFound: no such machine; ErrExists: the machine is
	// already assigned, or the name or MAC belongs to a host.
	AssignDiscovered(ctx context.Context, a Assignment) (*inventory.HostRecord, error)

	Close() error
}

// ErrConflict is returned by SetHostState when the host no longer holds the
// token the change was conditioned on (Transition.IfToken).
var ErrConflict = errors.New("conflict")

// Transition is one change of a host's netboot state.
type Transition struct {
	State string
	// Token is the new build token, required for install. Leaving
	// install clears the token, so no old kickstart URL or callback
	// works afterwards.
	Token   string
	Expires time.Time
	// IfToken, when not empty, applies the change only while the host
	// still holds this token: the callback of an install that an
	// operator has since restarted changes nothing (ErrConflict).
	IfToken string
}

// Check says whether a transition is well formed.
func (t Transition) Check() error {
	switch t.State {
	case inventory.StateInstall:
		if t.Token == "" || t.Expires.IsZero() {
			return errors.New("install needs a build token and its expiry")
		}
	case inventory.StateLocal, inventory.StateMenu:
		if t.Token != "" {
			return fmt.Errorf("a build token is only kept in install, not %s", t.State)
		}
	default:
		return fmt.Errorf("unknown state %q (want install, local or menu)", t.State)
	}
	return nil
}

// Event is one entry of a host's install timeline.
type Event struct {
	ID     int64          `json:"id"`
	Host   string         `json:"host,omitempty"`
	At     time.Time      `json:"at"`
	Kind   string         `json:"kind"` // e.g. dhcp.ack, tftp.file, http.kernel, syslog, callback.built, state
	Detail string         `json:"detail"`
	Data   map[string]any `json:"data,omitempty"`
}

// Declared is the file-owned part of the inventory.
type Declared struct {
	Distros  []inventory.Distro
	Profiles []inventory.Profile
	Hosts    []inventory.Host
	Now      time.Time
	TokenTTL time.Duration
	// NewToken makes build tokens for hosts the file puts in install.
	NewToken func() string
	// Changed, when not nil, names the only hosts that can differ from
	// the previous sync (added, edited or removed in the file since): the
	// others are neither read nor compared, so one edited host of 100,000
	// costs one host's work. nil compares every host.
	Changed []string
}

// SyncReport says what a sync changed, so nothing changes silently.
type SyncReport struct {
	Added, Updated, Removed []string // "host newbox", "profile el8", ...
	// States lists the netboot state changes the file caused: a new host,
	// a changed netboot value, a host restored to the file. The caller
	// records each on the host's timeline.
	States []StateChange
	// Retired lists file hosts removed from the file; their last state
	// is kept, so a host restored to the file resumes it.
	Retired []StateChange
	// TakenOver lists live objects that the file now declares.
	TakenOver []string
}

// Changed reports whether the sync altered anything.
func (r SyncReport) Changed() bool {
	return len(r.Added)+len(r.Updated)+len(r.Removed)+len(r.States)+len(r.TakenOver) > 0
}

// StateChange is one host's state change made by a sync.
type StateChange struct {
	Host     string
	From, To string // From is "" for a host the store has never seen
	Why      string // see the Why constants
}

// Why a sync changed a host's state.
const (
	WhyNewHost  = "new host in the file"
	WhyNetboot  = "netboot changed in the file"
	WhyRestored = "restored to the file"
	WhyRemoved  = "removed from the file"
)
