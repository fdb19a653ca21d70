// Package enginetest holds what the DHCPv4 and DHCPv6 servers' tests share:
// a socket that records what is sent, a way to hand a packet to a server
// and wait for its commits, a store that can be taken down, and a log sink
// tests may read while servers write to it.
package enginetest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

// Sent is one datagram a server sent.
type Sent struct {
	To   netip.AddrPort
	Data []byte
}

// Recorder stands in for a server's socket: it keeps what is sent and
// gives nothing to read.
type Recorder struct {
	mu   sync.Mutex
	sent []Sent
}

func (r *Recorder) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	r.mu.Lock()
	r.sent = append(r.sent, Sent{to, append([]byte(nil), b...)})
	r.mu.Unlock()
	return len(b), nil
}

func (r *Recorder) ReadFromUDPAddrPort([]byte) (int, netip.AddrPort, error) {
	return 0, netip.AddrPort{}, net.ErrClosed
}

// Take returns what was sent since the last Take.
func (r *Recorder) Take() []Sent {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.sent
	r.sent = nil
	return s
}

// Deliver hands data to s as if it arrived on port from src through conn
// on link, and waits until its lease commits are done (the reply to a
// bind is sent by the commit).
func Deliver(e *dhcpengine.Engine, s dhcpengine.Handler, conn dhcpengine.Conn, link any, port int, src netip.AddrPort, data []byte) {
	var wg sync.WaitGroup
	e.Handle(context.Background(), s, &dhcpengine.Packet{Data: data, Src: src, Pending: &wg,
		Socket: &dhcpengine.Socket{Conn: conn, Port: port, Link: link}})
	wg.Wait()
}

// Outage is a Fake store whose lease calls fail with ErrUnavailable while
// Down is set, as the PostgreSQL store's do while the database restarts.
type Outage struct {
	*storetest.Fake
	Down atomic.Bool
}

func (o *Outage) CommitLeases(ctx context.Context, ops []store.LeaseOp) ([]store.LeaseResult, error) {
	if o.Down.Load() {
		return nil, fmt.Errorf("commit: %w: connection refused", store.ErrUnavailable)
	}
	return o.Fake.CommitLeases(ctx, ops)
}

func (o *Outage) Leases(ctx context.Context, family int) ([]store.Lease, error) {
	if o.Down.Load() {
		return nil, fmt.Errorf("list leases: %w: connection refused", store.ErrUnavailable)
	}
	return o.Fake.Leases(ctx, family)
}

// SyncBuffer is a log sink servers' goroutines may write to while the test
// reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// DistrosYAML is the start of the tests' inventories: one distro, one
// profile using it. A family's tests append their hosts and DHCP section.
const DistrosYAML = `
server:
  http: ":8080"
distros:
  - name: el9
    release: rhel9
    arch: x86_64
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
`

// Setup parses an inventory, syncs it into st (through the lifecycle, the
// one writer of host state) and returns the config and a real Booter over
// st.
func Setup(t testing.TB, st store.Store, yaml string) (*inventory.Config, *boot.Booter) {
	t.Helper()
	cfg, err := inventory.Parse("lab.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	current := func() *inventory.Config { return cfg }
	b := boot.NewBooter(st, current)
	n := 0
	svc := install.New(install.Deps{Store: st, Booter: b, Config: current,
		NewToken: func() string { n++; return fmt.Sprintf("token%d", n) }})
	if _, err := svc.SyncFile(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return cfg, b
}

// Decoded is a datagram a server sent, decoded.
type Decoded[T any] struct {
	To netip.AddrPort
	P  T
}

// Take returns what r recorded since the last Take, decoded. A datagram
// that does not decode is a server bug: it panics.
func Take[T any](r *Recorder, decode func([]byte) (T, error)) []Decoded[T] {
	var out []Decoded[T]
	for _, x := range r.Take() {
		p, err := decode(x.Data)
		if err != nil {
			panic(fmt.Sprintf("the server sent what does not decode: %v", err))
		}
		out = append(out, Decoded[T]{x.To, p})
	}
	return out
}
