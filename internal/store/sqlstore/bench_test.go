package sqlstore

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// BenchmarkCommitLeases is one group commit of n fresh binds on SQLite
// (fsync'd): 1 is a quiet server, each REQUEST its own transaction; 64 and
// 512 a busy one's batches. Beside an inventory of hosts with static
// addresses (outside the pool): a batch reads only its own addresses'
// reservations, so their number costs nothing.
func BenchmarkCommitLeases(b *testing.B) {
	for _, hosts := range []int{0, 20000} {
		for _, n := range []int{1, 64, 512} {
			for _, fam := range []struct {
				family int
				first  netip.Addr
			}{{4, netip.MustParseAddr("198.18.0.1")}, {6, netip.MustParseAddr("2001:db8::1:0")}} {
				b.Run(fmt.Sprintf("hosts=%d/v%d/%d", hosts, fam.family, n), func(b *testing.B) {
					s, err := OpenSQLite(context.Background(), b.TempDir())
					if err != nil {
						b.Fatal(err)
					}
					defer s.Close()
					now := time.Now()
					if hosts > 0 {
						d := store.Declared{Distros: []inventory.Distro{{Name: "el9", Release: "rhel9", Kernel: "vmlinuz", Initrds: []string{"initrd.img"}}},
							Profiles: []inventory.Profile{{Name: "p", Distro: "el9"}}, Now: now, TokenTTL: time.Hour, NewToken: func() string { return "t" }}
						for i := 0; i < hosts; i++ {
							d.Hosts = append(d.Hosts, inventory.Host{Name: fmt.Sprintf("h%d", i), MACs: []string{fmt.Sprintf("52:54:01:00:%02x:%02x", i/256, i%256)},
								IPv4: fmt.Sprintf("203.0.%d.%d/16", i/256, i%256), IPv6: fmt.Sprintf("2001:db8:ffff::%x/64", i+1), Profile: "p", Netboot: inventory.StateLocal})
						}
						if _, err := s.SyncDeclared(context.Background(), d); err != nil {
							b.Fatal(err)
						}
					}
					a := fam.first
					last := fam.first
					for i := 0; i < 1<<22; i++ {
						last = last.Next()
					}
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						ops := make([]store.LeaseOp, n)
						for k := range ops {
							a = a.Next()
							ops[k] = store.LeaseOp{Kind: store.LeaseBind, Addr: a, MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i%256, k/256, k%256),
								ClientID: "01", PoolFirst: fam.first, PoolLast: last, Now: now, Until: now.Add(time.Hour)}
						}
						if _, err := s.CommitLeases(context.Background(), ops); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "binds/s")
				})
			}
		}
	}
}
