package dhcpengine_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/dhcpengine/dhcpcap"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/store/pgtest"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

// TestTwoServersOnePostgres is the shared-store promise, for each family,
// through the real binary: two kickstand serve processes, each in its own
// lab, one PostgreSQL store and the same pool, 1,000 perfdhcp exchanges
// against each at once, from clients of distinct MACs. Both allocate from the same free addresses at the
// same time, which is where a store without conditional writes hands one
// address out twice (coredhcp#142): no address may go to two clients, and
// every ACK or Reply seen on either wire must be in the store.
func TestTwoServersOnePostgres(t *testing.T) {
	for _, fam := range killFamilies {
		t.Run(fmt.Sprintf("v%d", fam.family), func(t *testing.T) {
			dsn := pgtest.Schema(t, pgtest.DSN(t))
			bin := enginetest.BuildKickstand(t)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			type side struct {
				stop func() []dhcpcap.Captured
				perf bytes.Buffer
			}
			var sides [2]side
			var wg sync.WaitGroup
			var mu sync.Mutex
			var bound []dhcpcap.Captured
			perLink := make([][]dhcpcap.Captured, len(sides))
			for i := range sides {
				lab := familyLab(t, fam, fmt.Sprintf("ks2p%d%d", fam.family, i))
				dir := t.TempDir()
				cfg := serveConfig(t, fam, lab, dir, dsn)
				sides[i].stop = capture(t, ctx, lab, fam, dir)
				ks := serve(t, ctx, lab, fam, bin, cfg, filepath.Join(dir, "kickstand.log"))
				t.Cleanup(func() { ks.Process.Signal(syscall.SIGTERM); ks.Wait() })
				wg.Add(1)
				go func() {
					defer wg.Done()
					if fam.family == 6 {
						time.Sleep(1500 * time.Millisecond) // a fresh bridge drops multicast for about a second
					}
					p := perfdhcp(ctx, lab, fam, 500, 1000, i+1)
					p.Stdout, p.Stderr = &sides[i].perf, &sides[i].perf
					if err := p.Run(); err != nil {
						t.Logf("perfdhcp %d: %v", i, err)
					}
					b := boundOnly(sides[i].stop())
					mu.Lock()
					bound = append(bound, b...)
					perLink[i] = b
					mu.Unlock()
					t.Logf("server %d: %d bindings on the wire\n%s", i, len(b), enginetest.LastLines(sides[i].perf.String(), 12))
				}()
			}
			wg.Wait()
			st, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			// perfdhcp picks its 1,000 clients per side at random, with
			// repeats: about 630 distinct ones each.
			if n := checkBindings(t, ctx, st, fam.family, bound, perLink...); n < 800 {
				t.Errorf("only %d clients bound", n)
			}
		})
	}
}
