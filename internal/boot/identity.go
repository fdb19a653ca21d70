package boot

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Proof is what tied a request to a host. Only what the network proves
// counts: a DHCP packet's own hardware address, UUID or DUID (the root of
// every lease), an address kickstand leased or the inventory gives, or a
// binding kickstand saw made. A query parameter, a header or a syslog
// hostname never does.
type Proof string

const (
	ProofUUID   Proof = "SMBIOS UUID in the DHCP request"
	ProofMAC    Proof = "MAC of the DHCP request"
	ProofDUID   Proof = "DUID of the DHCPv6 request"
	ProofStatic Proof = "static address"
	ProofLease  Proof = "DHCP lease"
	ProofProxy  Proof = "address seen in proxyDHCP traffic"
	ProofMenu   Proof = "menu choice"
	// ProofDiscovered: the address a discovered machine reported from,
	// for the host it was then assigned to.
	ProofDiscovered Proof = "address of the discovery report"
)

// Identity is who a request belongs to.
type Identity struct {
	Host  *inventory.HostRecord // nil: no host
	Proof Proof
	// MAC is the machine's hardware address as the network showed it
	// (the lease's, the DHCP packet's), when known.
	MAC string
}

// Leases is what identification by address reads: the leases kickstand
// committed (IPv4 or IPv6), durable and shared between servers.
type Leases interface {
	Lease(ctx context.Context, a netip.Addr) (*store.Lease, error)
}

// Identify says which host a request is from. Facts that carry a MAC, UUID
// or DUID come from DHCP and are identified by them; facts without (HTTP,
// TFTP) are identified by the client's address alone.
func (b *Booter) Identify(ctx context.Context, f Facts) (Identity, error) {
	if err := b.ensureIndex(ctx); err != nil {
		return Identity{}, err
	}
	if f.MAC == "" && f.UUID == "" && len(f.DUID) == 0 {
		return b.IdentifyAddr(ctx, f.ClientIP)
	}
	r, proof := b.Index.Match(Keys{MAC: f.MAC, UUID: f.UUID, DUID: f.DUID})
	return Identity{Host: r, Proof: proof, MAC: f.MAC}, nil
}

// Keys are what a DHCP packet proves about its client: its hardware
// address, SMBIOS UUID and DUID (each may be unknown).
type Keys struct {
	MAC  string
	UUID string
	DUID []byte
}

// Match finds the host a DHCP client is, in order of strength: its SMBIOS
// UUID, its MAC, its DUID (dhcp6.duids). The DHCP servers' reservations
// and the boot decision both ask it, so they cannot disagree about who a
// client is. Packets call it, so it is answered from the index, never the
// store; the index is loaded first if it was not yet.
func (b *Booter) Match(ctx context.Context, k Keys) (*inventory.HostRecord, error) {
	if err := b.ensureIndex(ctx); err != nil {
		return nil, err
	}
	r, _ := b.Index.Match(k)
	return r, nil
}

// ReservedBy names the host whose static address a is, "" for none: an
// address the DHCP pools must not give another client.
func (b *Booter) ReservedBy(a netip.Addr) string { return b.Index.NameAt(a) }

// IdentifyAddr says which host an address belongs to now: a menu choice
// made from it for a host still installing, a host's static address, a
// live lease kickstand committed for one of a host's MACs or DUIDs (v4 and
// v6), or, in proxyDHCP mode, a binding seen in the DHCP traffic.
func (b *Booter) IdentifyAddr(ctx context.Context, a netip.Addr) (Identity, error) {
	if err := b.ensureIndex(ctx); err != nil {
		return Identity{}, err
	}
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return Identity{}, nil
	}
	now := b.now()
	if bd, ok := b.Bindings.get(a, now); ok && (bd.proof == ProofMenu || bd.proof == ProofDiscovered) {
		if r := b.Index.Host(bd.host); r != nil && r.State == inventory.StateInstall && r.Token == bd.token {
			return Identity{Host: r, Proof: bd.proof, MAC: bd.mac}, nil
		}
	}
	if r := b.Index.ByAddr(a); r != nil {
		return Identity{Host: r, Proof: ProofStatic}, nil
	}
	leased, err := b.byLease(ctx, a, now)
	if leased.Host != nil || err != nil {
		return leased, err
	}
	if bd, ok := b.Bindings.get(a, now); ok && bd.proof == ProofProxy {
		if r := b.Index.ByMAC(bd.mac); r != nil {
			return Identity{Host: r, Proof: ProofProxy, MAC: bd.mac}, nil
		}
	}
	// No host; the lease still says which machine it is (for the menu
	// choice it may make, and for discovery).
	return Identity{MAC: leased.MAC}, nil
}

func (b *Booter) byLease(ctx context.Context, a netip.Addr, now time.Time) (Identity, error) {
	if b.Leases == nil {
		return Identity{}, nil
	}
	l, err := b.Leases.Lease(ctx, a)
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, nil
	}
	if err != nil {
		return Identity{}, err
	}
	if l.State != store.LeaseBound || !l.Active(now) {
		return Identity{}, nil
	}
	r := b.Index.ByMAC(l.MAC)
	if r == nil && a.Is6() {
		// A DHCPv6 lease's client is its DUID.
		r = b.Index.by(func() string { return b.Index.byDUID[normalDUID(l.ClientID)] })
	}
	if r == nil && a.Is6() && l.Host != "" {
		r = b.Index.Host(l.Host)
	}
	if r != nil {
		return Identity{Host: r, Proof: ProofLease, MAC: l.MAC}, nil
	}
	return Identity{MAC: l.MAC}, nil
}

// Bindings are address-to-machine bindings kickstand saw being made but did
// not lease itself: in proxyDHCP mode another server leases, and kickstand
// learns each known machine's address from the DHCP traffic it sees; and a
// machine that chose a host from the boot menu is bound to that host for
// the length of that install. Bounded: past maxBindings, expired entries
// go first and then the oldest.
type Bindings struct {
	mu sync.Mutex
	m  map[netip.Addr]binding
}

type binding struct {
	mac, host, token string
	proof            Proof
	at, until        time.Time
}

const maxBindings = 1 << 14

// Learn records that a known machine (by MAC) uses an address, as seen in
// proxyDHCP traffic. Unknown MACs are not kept: they identify no host, and
// a flood of them must not push real machines out.
func (b *Booter) Learn(a netip.Addr, mac string, until time.Time) {
	if b.Index.ByMAC(mac) == nil {
		return
	}
	b.Bindings.put(a, binding{mac: inventory.NormalMAC(mac), proof: ProofProxy, at: b.now(), until: until})
}

// Choose binds an address to the host chosen from the menu, for as long as
// that host keeps the build token it had when chosen.
func (b *Booter) Choose(a netip.Addr, mac string, host *inventory.HostRecord) {
	b.Bindings.put(a, binding{mac: mac, host: host.Name, token: host.Token, proof: ProofMenu, at: b.now(), until: host.TokenExpires})
}

// BindDiscovered binds a to the host a discovered machine was assigned,
// for as long as that install's token lasts, so its waiting loop gets the
// install without a lease to prove it, but only when a is the address the
// machine reported from (reportedFrom): a poll from anywhere else claims
// another machine's MAC, and gets nothing.
func (b *Booter) BindDiscovered(a netip.Addr, reportedFrom, mac string, host *inventory.HostRecord) bool {
	if from, err := netip.ParseAddr(reportedFrom); err != nil || from.Unmap().WithZone("") != a.Unmap().WithZone("") {
		return false
	}
	b.Bindings.put(a, binding{mac: mac, host: host.Name, token: host.Token, proof: ProofDiscovered, at: b.now(), until: host.TokenExpires})
	return true
}

func (bs *Bindings) put(a netip.Addr, bd binding) {
	a = a.Unmap().WithZone("")
	if !a.IsValid() {
		return
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	if bs.m == nil {
		bs.m = map[netip.Addr]binding{}
	}
	if _, ok := bs.m[a]; !ok && len(bs.m) >= maxBindings {
		var oldest netip.Addr
		for k, v := range bs.m {
			if v.until.Before(bd.at) {
				delete(bs.m, k)
				continue
			}
			if !oldest.IsValid() || v.at.Before(bs.m[oldest].at) {
				oldest = k
			}
		}
		if len(bs.m) >= maxBindings {
			delete(bs.m, oldest)
		}
	}
	bs.m[a] = bd
}

func (bs *Bindings) get(a netip.Addr, now time.Time) (binding, bool) {
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bd, ok := bs.m[a]
	if ok && !now.Before(bd.until) {
		delete(bs.m, a)
		return binding{}, false
	}
	return bd, ok
}
