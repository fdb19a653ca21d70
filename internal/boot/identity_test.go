package boot

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

type leases map[netip.Addr]store.Lease

func (l leases) Lease(_ context.Context, a netip.Addr) (*store.Lease, error) {
	if x, ok := l[a]; ok {
		return &x, nil
	}
	return nil, store.ErrNotFound
}

func identityRig(t *testing.T) (*Booter, *storetest.Fake, leases) {
	t.Helper()
	st := storetest.NewFake()
	if _, err := st.SyncDeclared(context.Background(), storetest.Declared(time.Now())); err != nil {
		t.Fatal(err)
	}
	ls := leases{}
	cfg := &inventory.Config{}
	return &Booter{Store: st, Leases: ls, Config: func() *inventory.Config { return cfg }}, st, ls
}

// Identity comes from DHCP's own MAC/UUID, a static address, a live lease,
// or a binding kickstand saw made; nothing else.
func TestIdentify(t *testing.T) {
	ctx := context.Background()
	b, _, ls := identityRig(t) // a: 52:..:0a, 192.0.2.10, uuid ..0a; b: 52:..:0b, 2001:db8::b
	name := func(id Identity, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if id.Host == nil {
			return ""
		}
		return id.Host.Name + " by " + string(id.Proof)
	}
	for _, c := range []struct {
		f    Facts
		want string
	}{
		{Facts{MAC: "52:54:00:00:00:0b"}, "b by " + string(ProofMAC)},
		{Facts{UUID: "00000000-0000-0000-0000-00000000000A"}, "a by " + string(ProofUUID)},
		{Facts{ClientIP: netip.MustParseAddr("192.0.2.10")}, "a by " + string(ProofStatic)},
		{Facts{ClientIP: netip.MustParseAddr("2001:db8::b")}, "b by " + string(ProofStatic)},
		// A DHCP request of an unknown MAC is not the host whose
		// address it names.
		{Facts{MAC: "52:54:00:00:00:99", ClientIP: netip.MustParseAddr("192.0.2.10")}, ""},
		{Facts{ClientIP: netip.MustParseAddr("192.0.2.77")}, ""},
		{Facts{ClaimedMAC: "52:54:00:00:00:0a", ClientIP: netip.MustParseAddr("192.0.2.77")}, ""},
	} {
		if got := name(b.Identify(ctx, c.f)); got != c.want {
			t.Errorf("%+v: %q, want %q", c.f, got, c.want)
		}
	}
	pool := netip.MustParseAddr("192.0.2.150")
	ls[pool] = store.Lease{Addr: pool, MAC: "52:54:00:00:00:0b", State: store.LeaseBound, Expires: time.Now().Add(time.Hour)}
	if got := name(b.IdentifyAddr(ctx, pool)); got != "b by "+string(ProofLease) {
		t.Errorf("leased address: %q", got)
	}
	ls[pool] = store.Lease{Addr: pool, MAC: "52:54:00:00:00:0b", State: store.LeaseReleased, Expires: time.Now().Add(time.Hour)}
	if got := name(b.IdentifyAddr(ctx, pool)); got != "" {
		t.Errorf("released lease: %q", got)
	}
	// proxyDHCP: bindings of known MACs are kept, unknown ones not.
	proxied := netip.MustParseAddr("198.51.100.5")
	b.Learn(proxied, "52:54:00:00:00:0a", time.Now().Add(time.Hour))
	b.Learn(netip.MustParseAddr("198.51.100.6"), "52:54:00:00:00:66", time.Now().Add(time.Hour))
	if got := name(b.IdentifyAddr(ctx, proxied)); got != "a by "+string(ProofProxy) {
		t.Errorf("proxy binding: %q", got)
	}
	if n := len(b.Bindings.m); n != 1 {
		t.Errorf("%d bindings kept, want 1 (unknown MACs are not)", n)
	}
}

// The bindings table is bounded, however many are made.
func TestBindingsBounded(t *testing.T) {
	var bs Bindings
	now := time.Now()
	for i := 0; i < maxBindings+500; i++ {
		a := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		bs.put(a, binding{mac: "x", at: now.Add(time.Duration(i)), until: now.Add(time.Hour)})
	}
	if len(bs.m) != maxBindings {
		t.Errorf("%d bindings, bound %d", len(bs.m), maxBindings)
	}
	if _, ok := bs.m[netip.AddrFrom4([4]byte{198, 18, 0, 0})]; ok {
		t.Error("the oldest binding was kept")
	}
}

// The index follows writes made elsewhere (another server), and a host
// removed elsewhere makes it start over.
func TestIndexFollows(t *testing.T) {
	ctx := context.Background()
	b, st, _ := identityRig(t)
	if err := b.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Millisecond)
	if _, err := st.SetHostState(ctx, "a", store.Transition{State: inventory.StateLocal}); err != nil {
		t.Fatal(err)
	}
	if h := b.Index.Host("a"); h.State != inventory.StateInstall {
		t.Fatalf("index changed by itself: %s", h.State)
	}
	if err := b.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if h := b.Index.Host("a"); h.State != inventory.StateLocal || b.Index.ByToken("tok1") != nil {
		t.Errorf("after Follow: %+v", h)
	}
	d := storetest.Declared(time.Now())
	d.Hosts = d.Hosts[:1]
	if _, err := st.SyncDeclared(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := b.Follow(ctx); err != nil {
		t.Fatal(err)
	}
	if b.Index.Host("b") != nil || b.Index.ByAddr(netip.MustParseAddr("2001:db8::b")) != nil {
		t.Error("a host removed elsewhere is still indexed")
	}
}

// A discovered machine's poll is bound to its assigned host only from the
// address it reported from; from any other address it is a claim.
func TestBindDiscoveredOnlyFromTheReportingAddress(t *testing.T) {
	ctx := context.Background()
	b, _, _ := identityRig(t)
	poll := netip.MustParseAddr("198.51.100.20")
	if _, err := b.IdentifyAddr(ctx, poll); err != nil { // loads the index
		t.Fatal(err)
	}
	rec := b.Index.Host("a")
	if rec == nil || rec.State != inventory.StateInstall {
		t.Fatalf("fixture: host a is not installing: %+v", rec)
	}
	if b.BindDiscovered(poll, "198.51.100.99", "52:54:00:00:00:77", rec) {
		t.Error("bound a poll from another address than the report's")
	}
	if id, _ := b.IdentifyAddr(ctx, poll); id.Host != nil {
		t.Errorf("the refused poll's address belongs to %s", id.Host.Name)
	}
	if !b.BindDiscovered(poll, "198.51.100.20", "52:54:00:00:00:77", rec) {
		t.Fatal("refused the poll from the reporting address")
	}
	if id, err := b.IdentifyAddr(ctx, poll); err != nil || id.Host == nil || id.Host.Name != "a" || id.Proof != ProofDiscovered {
		t.Errorf("after the binding: %+v %v, want a by %s", id, err, ProofDiscovered)
	}
}
