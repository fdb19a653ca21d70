package dhcpengine

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Keys are what a client presents that may name its inventory host, and
// what the allocator asks about an address. Empty fields are unknown.
type Keys struct {
	DUID     string // DHCPv6 client identifier, hex
	UUID     string // SMBIOS UUID (DHCPv4 option 97, a DHCPv6 DUID-UUID), normalised
	MAC      string // normalised
	ClientID string // DHCPv4 option 61, hex
	// Addr asks whose static address this is (the pool must not hand
	// out another host's reservation).
	Addr netip.Addr
}

// Host is an inventory host as the DHCP servers need it: its name, its
// static addresses (the reservations) and the keys the boot decision
// knows it by.
type Host struct {
	Name         string
	Addr4, Addr6 netip.Prefix // invalid when the host has none
	MACs         []string
	UUID         string
}

// Reservations finds the host a client is. Lookup is called for every
// packet, so it must answer from memory; found is false for a client that
// matches no host. The DHCP servers only read it: keeping it current is
// its owner's job.
type Reservations interface {
	Lookup(ctx context.Context, k Keys) (h Host, found bool, err error)
}

// storeHosts is the Reservations the servers use when given none: an
// index of the store's hosts (and the config's DHCPv6 DUID reservations),
// rebuilt on a config reload and at most every hostRefresh otherwise.
type storeHosts struct {
	st     store.Store
	config func() *inventory.Config
	ix     atomic.Pointer[hostIndex]
	mu     sync.Mutex // one rebuild at a time
}

// hostRefresh bounds how stale the index may get. A config reload
// replaces it at once; a host added through the API waits at most this
// long for its reservation.
const hostRefresh = 5 * time.Second

type hostIndex struct {
	cfg    *inventory.Config
	at     time.Time
	byDUID map[string]*Host
	byUUID map[string]*Host
	byMAC  map[string]*Host
	byAddr map[netip.Addr]*Host
}

// StoreReservations returns Reservations read from st's hosts and the
// config's dhcp6.duids.
func StoreReservations(st store.Store, config func() *inventory.Config) Reservations {
	return &storeHosts{st: st, config: config}
}

func (s *storeHosts) Lookup(ctx context.Context, k Keys) (Host, bool, error) {
	ix, err := s.index(ctx)
	if err != nil {
		return Host{}, false, err
	}
	for _, h := range []*Host{ix.byDUID[k.DUID], ix.byUUID[k.UUID], ix.byMAC[k.MAC], ix.byAddr[k.Addr]} {
		if h != nil {
			return *h, true, nil
		}
	}
	return Host{}, false, nil
}

func (s *storeHosts) index(ctx context.Context) (*hostIndex, error) {
	cfg := s.config()
	fresh := func(ix *hostIndex) bool { return ix != nil && ix.cfg == cfg && time.Since(ix.at) < hostRefresh }
	ix := s.ix.Load()
	if fresh(ix) {
		return ix, nil
	}
	// One caller rebuilds; the others keep using the old index meanwhile,
	// unless there is none for this config yet.
	if ix != nil && ix.cfg == cfg {
		if !s.mu.TryLock() {
			return ix, nil
		}
	} else {
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	if ix = s.ix.Load(); fresh(ix) {
		return ix, nil
	}
	recs, err := s.st.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	n := &hostIndex{cfg: cfg, at: time.Now(), byDUID: map[string]*Host{}, byUUID: map[string]*Host{},
		byMAC: map[string]*Host{}, byAddr: map[netip.Addr]*Host{}}
	byName := map[string]*Host{}
	for i := range recs {
		h := &Host{Name: recs[i].Name, UUID: inventory.NormalUUID(recs[i].UUID)}
		if p, ok := recs[i].Addr4(); ok && p.Addr().Is4() {
			h.Addr4 = p
			n.byAddr[p.Addr()] = h
		}
		if p, ok := recs[i].Addr6(); ok && p.Addr().Is6() {
			h.Addr6 = p
			n.byAddr[p.Addr()] = h
		}
		for _, m := range recs[i].MACs {
			if nm := inventory.NormalMAC(m); nm != "" {
				h.MACs = append(h.MACs, nm)
				n.byMAC[nm] = h
			}
		}
		if h.UUID != "" {
			n.byUUID[h.UUID] = h
		}
		byName[h.Name] = h
	}
	if cfg != nil {
		for _, r := range cfg.DHCP6.DUIDs {
			if h, ok := byName[r.Host]; ok {
				if d := inventory.NormalDUID(r.DUID); d != "" {
					n.byDUID[d] = h
				}
			}
		}
	}
	delete(n.byDUID, "")
	delete(n.byUUID, "")
	delete(n.byMAC, "")
	s.ix.Store(n)
	return n, nil
}
