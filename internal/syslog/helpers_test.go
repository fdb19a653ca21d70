package syslog

import (
	"context"
	"net"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// requireTool skips (or, under KICKSTAND_REQUIRE_PEERS=1, fails) when a real
// peer is missing.
func requireTool(t *testing.T, tool string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		why := tool + " not installed (scripts/deps.sh installs it)"
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
}

// collector gathers delivered messages; gate, when not nil, holds the
// handler until it is closed so tests can fill the queue.
type collector struct {
	mu      sync.Mutex
	msgs    []Message
	entered chan struct{}
	gate    chan struct{}
}

func newCollector() *collector { return &collector{entered: make(chan struct{}, 1024)} }

func (c *collector) handle(m Message) {
	c.entered <- struct{}{}
	if c.gate != nil {
		<-c.gate
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
}

func (c *collector) all() []Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Message(nil), c.msgs...)
}

// waitFor polls cond with a generous bound; it is a wait, not a timing
// assertion.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// runUDP serves s on a fresh UDP socket at addr and stops it at cleanup.
func runUDP(t *testing.T, s *Server, addr string, c *collector) net.PacketConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Skipf("listen %s: %v", addr, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, c.handle) }()
	t.Cleanup(func() {
		cancel()
		if c.gate != nil {
			select {
			case <-c.gate:
			default:
				close(c.gate)
			}
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		pc.Close()
	})
	return pc
}
