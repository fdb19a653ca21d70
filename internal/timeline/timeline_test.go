package timeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/storetest"
)

type byAddr map[netip.Addr]string

func (b byAddr) HostOf(_ context.Context, a netip.Addr) string { return b[a] }

// Events are attributed by the client address alone; a MAC an event
// carries (a client's claim) attributes nothing. Events of no host are not
// stored: they are counted and the newest kept in a bounded ring.
func TestAttributionAndUnknownRing(t *testing.T) {
	st := storetest.NewFake()
	rec := New(st, byAddr{netip.MustParseAddr("192.0.2.10"): "a"}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { rec.Run(ctx); close(done) }()
	rec.Record(store.Event{Kind: "http.script", Data: map[string]any{"client": "192.0.2.10"}})
	rec.Record(store.Event{Kind: "http.script", Data: map[string]any{"client": "192.0.2.99", "mac": "52:54:00:00:00:0a"}})
	for i := 0; i < 1000; i++ {
		rec.Record(store.Event{Kind: "syslog", Detail: fmt.Sprint(i, string(make([]byte, 2000))), Data: map[string]any{"client": "198.51.100.1"}})
	}
	// Repeats within a batch are one event with a count.
	for i := 0; i < 50; i++ {
		rec.Record(store.Event{Kind: "http.script", Detail: "GET /boot.ipxe", Data: map[string]any{"client": "192.0.2.10", "status": 200}})
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, counts := rec.Unknown()
		if counts["syslog"] == 1000 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	evs, err := st.Events(context.Background(), "", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, e := range evs {
		if e.Host != "a" {
			t.Fatalf("stored an event of no host: %+v", e)
		}
		var n int
		switch c := e.Data["count"].(type) {
		case int:
			n = c
		case float64:
			n = int(c)
		}
		total += max(n, 1)
	}
	if total != 51 || len(evs) > 10 {
		t.Errorf("stored %d events counting %d requests; want 51 requests in a few events", len(evs), total)
	}
	ring, counts := rec.Unknown()
	if counts["http.script"] != 1 || counts["syslog"] != 1000 {
		t.Errorf("counts = %v", counts)
	}
	if len(ring) != ringSize {
		t.Errorf("ring holds %d, bound %d", len(ring), ringSize)
	}
	for _, e := range ring {
		if len(e.Detail) > maxDetail+len("…") {
			t.Fatalf("ring kept %d bytes of detail", len(e.Detail))
		}
	}
}

// slowStore takes a while to commit and, like a database driver, fails a
// call made on a cancelled context.
type slowStore struct {
	*storetest.Fake
}

func (s slowStore) AppendEvents(ctx context.Context, evs []store.Event) error {
	time.Sleep(150 * time.Millisecond)
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.Fake.AppendEvents(ctx, evs)
}

// Events queued when the server stops are written, whichever of the tick
// or the stop the writer sees first: a batch flushed on the tick after
// the stop must not be written on the stopped context (a storm's SIGTERM
// lost dozens of events that way).
func TestStopLosesNoEvents(t *testing.T) {
	for round := 0; round < 10; round++ {
		st := slowStore{storetest.NewFake()}
		rec := New(st, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { rec.Run(ctx); close(done) }()
		want := 0
		// A first batch keeps the writer busy past a tick; the stop
		// comes while it is, with the second batch queued.
		for _, at := range []time.Duration{0, 120 * time.Millisecond} {
			time.Sleep(at)
			for i := 0; i < 5; i++ {
				rec.Record(store.Event{Host: "a", Kind: "k", Detail: fmt.Sprint(round, at, i)})
				want++
			}
		}
		time.Sleep(90 * time.Millisecond)
		cancel()
		<-done
		evs, err := st.Events(context.Background(), "a", 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != want {
			t.Fatalf("round %d: %d of %d events written", round, len(evs), want)
		}
	}
}
