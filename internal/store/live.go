package store

import (
	"context"
	"errors"

	"github.com/kickstand/kickstand/internal/inventory"
)

// ErrFileOwned is returned when a live change targets an object the file
// declares: the file owns it (the README's ownership rules), so it is
// edited there.
var ErrFileOwned = errors.New("declared in the config file")

// ErrInUse is returned when a live object cannot be removed because
// another uses it, or a host cannot take a MAC, UUID or address another
// host has.
var ErrInUse = errors.New("in use")

// LiveStore makes, changes and removes live objects, one transaction each.
// Only internal/install calls it: it validates, mints tokens and records
// every change on the timeline.
type LiveStore interface {
	// CreateHost adds a live host in the state of t (ErrExists if the name
	// is taken; ErrInUse if a MAC, the UUID or an address is another
	// host's).
	CreateHost(ctx context.Context, h inventory.Host, t Transition) (*inventory.HostRecord, error)
	// UpdateHost replaces a live host's definition; its state and token
	// stay (ErrNotFound, ErrFileOwned, ErrInUse).
	UpdateHost(ctx context.Context, h inventory.Host) (*inventory.HostRecord, error)
	// DeleteHost removes a live host and returns it as it was.
	DeleteHost(ctx context.Context, name string) (*inventory.HostRecord, error)
	// PutProfile and PutDistro create (create: ErrExists if taken) or
	// replace (ErrNotFound if missing) a live profile or distro.
	PutProfile(ctx context.Context, p inventory.Profile, create bool) error
	PutDistro(ctx context.Context, d inventory.Distro, create bool) error
	// DeleteProfile refuses a profile a host uses, DeleteDistro a distro
	// a profile uses (ErrInUse, naming them).
	DeleteProfile(ctx context.Context, name string) error
	DeleteDistro(ctx context.Context, name string) error
	// Origins says who owns each profile and distro (inventory.OriginFile
	// or OriginLive), by name.
	Origins(ctx context.Context) (profiles, distros map[string]string, err error)
}

// CheckLiveChange says whether a live change may touch an object owned by
// origin ("" when there is none): not the file's (ErrFileOwned), not an
// existing one for a create (ErrExists), not a missing one otherwise
// (ErrNotFound). Every store implementation asks it.
func CheckLiveChange(origin string, create bool) error {
	switch {
	case origin == inventory.OriginFile:
		return ErrFileOwned
	case create && origin != "":
		return ErrExists
	case !create && origin == "":
		return ErrNotFound
	}
	return nil
}

// Refused is a refused live change said in words ("MAC x is also used by
// host y") that still matches its sentinel (ErrFileOwned, ErrInUse) with
// errors.Is, so transports choose the status and show the words.
type Refused struct {
	Sentinel error
	Msg      string
}

func (r *Refused) Error() string { return r.Msg }
func (r *Refused) Unwrap() error { return r.Sentinel }
