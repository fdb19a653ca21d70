package boot

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/netip"
	"reflect"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Index holds every host, profile and distro in memory, keyed by what the
// network can prove about a machine: MAC, SMBIOS UUID, DUID and static
// address. Identifying a machine is then a map lookup instead of two or
// three store queries per packet or request, and DHCP reservations and
// HTTP/TFTP identification read the same answer.
//
// It is filled from the store (Load), kept current by the one writer of
// host state (Put, called by internal/install after each change), and
// follows writes made by another kickstand server sharing the store
// (Follow polls for hosts changed since the last look).
type Index struct {
	mu       sync.RWMutex
	hosts    map[string]*inventory.HostRecord
	byMAC    map[string]string
	byUUID   map[string]string
	byAddr   map[netip.Addr]string
	byDUID   map[string]string // from dhcp6.duids, hex lower-case
	byToken  map[string]string
	profiles map[string]*inventory.Profile
	distros  map[string]*inventory.Distro
	// seen is the newest updated_at read from the store, where the next
	// poll starts; count is the number of hosts the store had then.
	seen   time.Time
	count  int
	loaded bool
	// gen changes whenever profiles or distros change, so caches of
	// what was rendered from them know to start over.
	gen uint64
}

// IndexStore is what the index reads.
type IndexStore interface {
	Hosts(ctx context.Context) ([]inventory.HostRecord, error)
	HostsChangedSince(ctx context.Context, since time.Time) ([]inventory.HostRecord, int, error)
	Profiles(ctx context.Context) ([]inventory.Profile, error)
	Distros(ctx context.Context) ([]inventory.Distro, error)
}

// Load reads everything anew and swaps it in at once, so a lookup sees the
// old index or the new one, never half of each.
func (x *Index) Load(ctx context.Context, st IndexStore, duids []inventory.DUIDReservation) error {
	start := time.Now()
	hosts, err := st.Hosts(ctx)
	if err != nil {
		return fmt.Errorf("load host index: %w", err)
	}
	ps, ds, err := loadSpecs(ctx, st)
	if err != nil {
		return err
	}
	n := &Index{hosts: make(map[string]*inventory.HostRecord, len(hosts)), byMAC: map[string]string{},
		byUUID: map[string]string{}, byAddr: map[netip.Addr]string{}, byDUID: map[string]string{}, byToken: map[string]string{},
		profiles: ps, distros: ds, count: len(hosts), loaded: true}
	for i := range hosts {
		n.add(&hosts[i])
	}
	for _, r := range duids {
		n.byDUID[normalDUID(r.DUID)] = r.Host
	}
	// A write between our read and now is seen by the next Follow: it
	// starts a little before the read began.
	n.seen = start.Add(-time.Second)
	x.mu.Lock()
	x.hosts, x.byMAC, x.byUUID, x.byAddr, x.byDUID, x.byToken = n.hosts, n.byMAC, n.byUUID, n.byAddr, n.byDUID, n.byToken
	x.profiles, x.distros, x.seen, x.count, x.loaded = n.profiles, n.distros, n.seen, n.count, true
	x.gen++
	x.mu.Unlock()
	return nil
}

func loadSpecs(ctx context.Context, st IndexStore) (map[string]*inventory.Profile, map[string]*inventory.Distro, error) {
	pl, err := st.Profiles(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load profiles: %w", err)
	}
	dl, err := st.Distros(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load distros: %w", err)
	}
	ps := make(map[string]*inventory.Profile, len(pl))
	for i := range pl {
		ps[pl[i].Name] = &pl[i]
	}
	ds := make(map[string]*inventory.Distro, len(dl))
	for i := range dl {
		ds[dl[i].Name] = &dl[i]
	}
	return ps, ds, nil
}

// Follow applies what changed in the store since the last look: hosts
// written by another server, and the profiles and distros (a handful,
// re-read whole: `distro import` registers them from another process). A
// host removed elsewhere shows as a smaller count, and then the whole
// index is re-read.
func (x *Index) Follow(ctx context.Context, st IndexStore, duids []inventory.DUIDReservation) error {
	x.mu.RLock()
	since, loaded := x.seen, x.loaded
	x.mu.RUnlock()
	if !loaded {
		return x.Load(ctx, st, duids)
	}
	start := time.Now()
	changed, n, err := st.HostsChangedSince(ctx, since)
	if err != nil {
		return fmt.Errorf("follow host changes: %w", err)
	}
	ps, ds, err := loadSpecs(ctx, st)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if !reflect.DeepEqual(ps, x.profiles) || !reflect.DeepEqual(ds, x.distros) {
		x.profiles, x.distros = ps, ds
		x.gen++
	}
	added := 0
	for i := range changed {
		if x.hosts[changed[i].Name] == nil {
			added++
		}
		x.put(&changed[i])
	}
	consistent := x.count+added == n
	if consistent {
		x.count, x.seen = n, start.Add(-time.Second)
	}
	x.mu.Unlock()
	if !consistent {
		return x.Load(ctx, st, duids)
	}
	return nil
}

// Put records a host as just written by this server.
func (x *Index) Put(r *inventory.HostRecord) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.hosts == nil {
		return // not loaded: the first Load reads it from the store
	}
	if x.hosts[r.Name] == nil {
		x.count++
	}
	x.put(r)
}

// Remove forgets a host this server just removed (a live host's rm).
func (x *Index) Remove(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if r := x.hosts[name]; r != nil {
		x.remove(r)
		x.count--
	}
}

func (x *Index) put(r *inventory.HostRecord) {
	if old := x.hosts[r.Name]; old != nil {
		x.remove(old)
	}
	c := *r
	x.add(&c)
}

func (x *Index) add(r *inventory.HostRecord) {
	x.hosts[r.Name] = r
	for _, m := range r.MACs {
		x.byMAC[m] = r.Name
	}
	if r.UUID != "" {
		x.byUUID[r.UUID] = r.Name
	}
	if r.Token != "" {
		x.byToken[r.Token] = r.Name
	}
	for _, a := range staticAddrs(&r.Host) {
		x.byAddr[a] = r.Name
	}
}

func (x *Index) remove(r *inventory.HostRecord) {
	for _, m := range r.MACs {
		if x.byMAC[m] == r.Name {
			delete(x.byMAC, m)
		}
	}
	if r.UUID != "" && x.byUUID[r.UUID] == r.Name {
		delete(x.byUUID, r.UUID)
	}
	if r.Token != "" && x.byToken[r.Token] == r.Name {
		delete(x.byToken, r.Token)
	}
	for _, a := range staticAddrs(&r.Host) {
		if x.byAddr[a] == r.Name {
			delete(x.byAddr, a)
		}
	}
	delete(x.hosts, r.Name)
}

func staticAddrs(h *inventory.Host) []netip.Addr {
	var out []netip.Addr
	if p, ok := h.Addr4(); ok {
		out = append(out, p.Addr())
	}
	if p, ok := h.Addr6(); ok {
		out = append(out, p.Addr())
	}
	return out
}

// Host returns a copy of the named host's record, or nil.
func (x *Index) Host(name string) *inventory.HostRecord {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.copyOf(name)
}

func (x *Index) copyOf(name string) *inventory.HostRecord {
	r := x.hosts[name]
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

// Match finds the host keys name (Booter.Match says in which order) and
// the proof that tied it, under one read lock: the DHCP servers call it for
// every packet.
func (x *Index) Match(k Keys) (*inventory.HostRecord, Proof) {
	var uuid, mac, duid string
	if k.UUID != "" {
		uuid = inventory.NormalUUID(k.UUID)
	}
	if k.MAC != "" {
		mac = inventory.NormalMAC(k.MAC)
	}
	if len(k.DUID) > 0 {
		duid = hex.EncodeToString(k.DUID)
	}
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.hosts == nil {
		return nil, ""
	}
	for _, c := range [...]struct {
		key   string
		by    map[string]string
		proof Proof
	}{{uuid, x.byUUID, ProofUUID}, {mac, x.byMAC, ProofMAC}, {duid, x.byDUID, ProofDUID}} {
		if c.key == "" {
			continue
		}
		if r := x.copyOf(c.by[c.key]); r != nil {
			return r, c.proof
		}
	}
	return nil, ""
}

// NameAt names the host whose static address a is, "" for none.
func (x *Index) NameAt(a netip.Addr) string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.byAddr[a.Unmap().WithZone("")]
}

// ByMAC, ByToken and ByAddr find a host by one key (nil if none).
// ByAddr knows static addresses only: leases are the Booter's business.
func (x *Index) ByMAC(mac string) *inventory.HostRecord {
	return x.by(func() string { return x.byMAC[inventory.NormalMAC(mac)] })
}
func (x *Index) ByToken(token string) *inventory.HostRecord {
	if token == "" {
		return nil
	}
	return x.by(func() string { return x.byToken[token] })
}
func (x *Index) ByAddr(a netip.Addr) *inventory.HostRecord {
	return x.by(func() string { return x.byAddr[a.Unmap().WithZone("")] })
}

func (x *Index) by(name func() string) *inventory.HostRecord {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if x.hosts == nil {
		return nil
	}
	return x.copyOf(name())
}

// Profile and Distro return copies of a spec, or nil.
func (x *Index) Profile(name string) *inventory.Profile {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if p := x.profiles[name]; p != nil {
		c := *p
		return &c
	}
	return nil
}

func (x *Index) Distro(name string) *inventory.Distro {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if d := x.distros[name]; d != nil {
		c := *d
		return &c
	}
	return nil
}

// Installing returns the hosts in install state, in name order of the
// caller's choosing (the menu sorts them).
func (x *Index) Installing() []inventory.HostRecord {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []inventory.HostRecord
	for _, r := range x.hosts {
		if r.State == inventory.StateInstall {
			out = append(out, *r)
		}
	}
	return out
}

// Gen is the generation of the profiles and distros.
func (x *Index) Gen() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.gen
}

// Len is the number of hosts indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.hosts)
}

func (x *Index) isLoaded() bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.loaded
}

func normalDUID(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'A' && c <= 'F':
			b = append(b, c+'a'-'A')
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
			b = append(b, c)
		}
	}
	return string(b)
}
