package dhcp4

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
)

// TestGroupCommit: many clients at once are committed in a few
// transactions, and no address goes to two of them.
func TestGroupCommit(t *testing.T) {
	st, err := sqlstore.OpenSQLite(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := newHarness(t, st, "server")
	h.s.CommitWindow = 20 * time.Millisecond // generous, so the batching is not at the scheduler's mercy
	h.s.CommitMax = 256
	h.start()
	const clients = 90 // the pool holds 100
	var wg sync.WaitGroup
	acks := make(chan *dhcpv4.DHCPv4, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := &enginetest.Recorder{}
			run := func(p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
				h.handle(rec, p, serverPort, "0.0.0.0:68")
				out := enginetest.Take(rec, dhcpv4.FromBytes)
				if len(out) != 1 {
					return nil
				}
				return out[0].P
			}
			o := run(packet(t, fmt.Sprintf("52:54:00:10:00:%02x", i)))
			if o == nil {
				return
			}
			if a := run(req(t, o)); a != nil && a.MessageType() == dhcpv4.MessageTypeAck {
				acks <- a
			}
		}()
	}
	wg.Wait()
	close(acks)
	owner := map[string]string{}
	for a := range acks {
		if o, dup := owner[a.YourIPAddr.String()]; dup {
			t.Errorf("%v ACKed to %s and %s", a.YourIPAddr, o, a.ClientHWAddr)
		}
		owner[a.YourIPAddr.String()] = a.ClientHWAddr.String()
	}
	if len(owner) != clients {
		t.Errorf("%d ACKs for %d clients", len(owner), clients)
	}
	leases, _ := st.Leases(context.Background(), 4)
	bound := 0
	for _, l := range leases {
		if l.State == store.LeaseBound {
			bound++
			if owner[l.Addr.String()] != l.MAC {
				t.Errorf("stored %v -> %s, ACKed to %s", l.Addr, l.MAC, owner[l.Addr.String()])
			}
		}
	}
	if bound != clients {
		t.Errorf("%d bound leases stored, want %d", bound, clients)
	}
	// Offers are chosen in memory; only the binds reach the store.
	b, ops := h.s.Stats().Batches, h.s.Stats().LeaseOps
	t.Logf("%d lease ops (%d offers in memory, %d binds) in %d transactions", ops, clients, clients, b)
	if ops != 2*clients || b > clients/4 {
		t.Errorf("%d ops in %d transactions: want %d ops, the binds batched at least 4 to a transaction", ops, b, 2*clients)
	}
}
