package enginetest

import (
	"context"
	"fmt"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

// Live is an inventory kept the way `kickstand serve` keeps it: a config a
// reload replaces, synced into the store by the lifecycle service, which
// keeps the Booter's host index current (the index the DHCP reservations
// read). The store counts its reads of hosts and leases, so a test can
// show that packets cost none.
type Live struct {
	St     *Counting
	Booter *boot.Booter
	Svc    *install.Service
	cfg    atomic.Pointer[inventory.Config]
}

// NewLive parses yaml and syncs it into st, as a server's start does.
func NewLive(t testing.TB, st store.Store, yaml string) *Live {
	t.Helper()
	cfg, err := inventory.Parse("lab.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	l := &Live{St: &Counting{Store: st}}
	l.cfg.Store(cfg)
	l.Booter = boot.NewBooter(l.St, l.Config)
	n := 0
	l.Svc = install.New(install.Deps{Store: l.St, Booter: l.Booter, Config: l.Config,
		NewToken: func() string { n++; return fmt.Sprintf("token%d", n) }})
	if _, err := l.Svc.SyncFile(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return l
}

// Config is the config in force.
func (l *Live) Config() *inventory.Config { return l.cfg.Load() }

// Reload replaces the config with yaml as a server's reload does: only the
// hosts that differ are synced, and the index follows the store's changes
// (re-read whole when the DUID reservations changed).
func (l *Live) Reload(t testing.TB, yaml string) {
	t.Helper()
	cfg, err := inventory.Parse("lab.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	old := l.Config()
	changed := inventory.ChangedHosts(old, cfg)
	if changed == nil {
		changed = []string{}
	}
	if fmt.Sprint(old.DHCP6.DUIDs) != fmt.Sprint(cfg.DHCP6.DUIDs) {
		changed = nil
	}
	if _, err := l.Svc.SyncChanged(context.Background(), cfg, changed); err != nil {
		t.Fatal(err)
	}
	l.cfg.Store(cfg)
}

// ForEachStore runs a test against the fake store and a real SQLite one.
func ForEachStore(t *testing.T, f func(*testing.T, store.Store)) {
	t.Run("fake", func(t *testing.T) { f(t, storetest.NewFake()) })
	t.Run("sqlite", func(t *testing.T) {
		st, err := sqlstore.OpenSQLite(context.Background(), t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		f(t, st)
	})
}

// Counting is a store that counts the reads identification could make:
// hosts by any key, all of them or those changed, profiles, distros, and
// leases. Lease writes and the allocator's lease list are not counted.
type Counting struct {
	store.Store
	reads atomic.Int64
}

// Reads is how many counted reads were made since the last call.
func (c *Counting) Reads() int64 { return c.reads.Swap(0) }

func (c *Counting) Host(ctx context.Context, name string) (*inventory.HostRecord, error) {
	c.reads.Add(1)
	return c.Store.Host(ctx, name)
}

func (c *Counting) HostByMAC(ctx context.Context, mac string) (*inventory.HostRecord, error) {
	c.reads.Add(1)
	return c.Store.HostByMAC(ctx, mac)
}

func (c *Counting) HostByUUID(ctx context.Context, uuid string) (*inventory.HostRecord, error) {
	c.reads.Add(1)
	return c.Store.HostByUUID(ctx, uuid)
}

func (c *Counting) HostByAddr(ctx context.Context, a netip.Addr) (*inventory.HostRecord, error) {
	c.reads.Add(1)
	return c.Store.HostByAddr(ctx, a)
}

func (c *Counting) HostByToken(ctx context.Context, token string) (*inventory.HostRecord, error) {
	c.reads.Add(1)
	return c.Store.HostByToken(ctx, token)
}

func (c *Counting) Hosts(ctx context.Context) ([]inventory.HostRecord, error) {
	c.reads.Add(1)
	return c.Store.Hosts(ctx)
}

func (c *Counting) HostsChangedSince(ctx context.Context, since time.Time) ([]inventory.HostRecord, int, error) {
	c.reads.Add(1)
	return c.Store.HostsChangedSince(ctx, since)
}

func (c *Counting) Profiles(ctx context.Context) ([]inventory.Profile, error) {
	c.reads.Add(1)
	return c.Store.Profiles(ctx)
}

func (c *Counting) Distros(ctx context.Context) ([]inventory.Distro, error) {
	c.reads.Add(1)
	return c.Store.Distros(ctx)
}

func (c *Counting) Lease(ctx context.Context, a netip.Addr) (*store.Lease, error) {
	c.reads.Add(1)
	return c.Store.Lease(ctx, a)
}
