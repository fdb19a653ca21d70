package dhcpengine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

// BenchmarkCommitPipeline is the group commit on SQLite fed by 1,024
// clients, each handing over one bind after another as soon as its
// previous one is durable: the binds per second the commit path allows
// (offers from memory included).
func BenchmarkCommitPipeline(b *testing.B) {
	for _, fam := range dhcpengine.TestPools {
		b.Run(fmt.Sprintf("v%d", fam.Family), func(b *testing.B) {
			st, err := sqlstore.OpenSQLite(context.Background(), b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			e := newEngine(&testing.T{}, dhcpengine.Options{Family: fam.Family, Store: st})
			defer e.Start(context.Background())()
			var n atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := 0; w < 1024; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := int(n.Add(1)); i <= b.N; i = int(n.Add(1)) {
						now := time.Now()
						op := store.LeaseOp{Kind: store.LeaseBind, MAC: fmt.Sprintf("02:00:00:%02x:%02x:%02x", i>>16&255, i>>8&255, i&255),
							PoolFirst: fam.First, PoolLast: fam.Last, Now: now, Until: now.Add(time.Hour)}
						o, _ := e.Offer(context.Background(), op)
						op.Addr = o.Lease.Addr
						done := make(chan struct{})
						e.Commit(context.Background(), nil, []store.LeaseOp{op}, func([]store.LeaseResult, error) { close(done) })
						<-done
					}
				}()
			}
			wg.Wait()
			s := e.Stats()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "binds/s")
			b.ReportMetric(float64(s.LeaseOps-uint64(b.N))/float64(max(s.Batches, 1)), "binds/batch")
		})
	}
}
