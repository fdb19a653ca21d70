package sqlstore

import (
	"context"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

// BenchmarkCommitLeases is one group commit of n fresh binds, the DHCP
// servers' steady state under load, on SQLite (fsync'd).
func BenchmarkCommitLeases(b *testing.B) {
	for _, n := range []int{64, 512} {
		for _, fam := range []struct {
			family int
			first  netip.Addr
		}{{4, netip.MustParseAddr("198.18.0.1")}, {6, netip.MustParseAddr("2001:db8::1:0")}} {
			b.Run(fmt.Sprintf("v%d/%d", fam.family, n), func(b *testing.B) {
				s, err := OpenSQLite(context.Background(), b.TempDir())
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				a := fam.first
				last := fam.first
				for i := 0; i < 1<<22; i++ {
					last = last.Next()
				}
				now := time.Now()
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
