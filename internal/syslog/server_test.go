package syslog

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func send(t *testing.T, to net.Addr, lines ...string) netip.AddrPort {
	t.Helper()
	c, err := net.Dial("udp", to.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, l := range lines {
		if _, err := c.Write([]byte(l)); err != nil {
			t.Fatal(err)
		}
	}
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

func TestServeUDPv4AndV6(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) {
			c := newCollector()
			s := &Server{}
			pc := runUDP(t, s, addr, c)
			from := send(t, pc.LocalAddr(), "<14>anaconda: one", "<14>anaconda: two", "\n", "<14>anaconda: three")
			waitFor(t, "three messages", func() bool { return len(c.all()) == 3 })
			for i, m := range c.all() {
				if want := []string{"one", "two", "three"}[i]; m.Text != want || m.App != "anaconda" {
					t.Errorf("message %d = %+v, want %q in order", i, m, want)
				}
				if m.Source != from {
					t.Errorf("Source = %v, want %v", m.Source, from)
				}
			}
			if st := s.Stats(); st.Received != 4 || st.Malformed != 1 || st.Dropped != 0 {
				t.Errorf("stats = %+v, want 4 received, 1 malformed (the empty line)", st)
			}
		})
	}
}

func TestServeDropsWhenQueueFull(t *testing.T) {
	c := newCollector()
	c.gate = make(chan struct{})
	s := &Server{QueueLen: 2}
	pc := runUDP(t, s, "127.0.0.1:0", c)
	send(t, pc.LocalAddr(), "<14>a: 0")
	<-c.entered // the worker holds line 0; the queue is empty
	var lines []string
	for i := 1; i < 10; i++ {
		lines = append(lines, fmt.Sprintf("<14>a: %d", i))
	}
	send(t, pc.LocalAddr(), lines...)
	waitFor(t, "ten lines read", func() bool { return s.Stats().Received == 10 })
	if st := s.Stats(); st.Dropped != 7 {
		t.Errorf("dropped = %d, want 7 (queue of 2 behind a busy handler)", st.Dropped)
	}
	close(c.gate)
	waitFor(t, "three delivered", func() bool { return len(c.all()) == 3 })
	for i, m := range c.all() {
		if m.Text != fmt.Sprint(i) {
			t.Errorf("delivered %d = %q, want the first three in order", i, m.Text)
		}
	}
}

func TestServeTruncatesLongDatagrams(t *testing.T) {
	c := newCollector()
	s := &Server{}
	pc := runUDP(t, s, "127.0.0.1:0", c)
	send(t, pc.LocalAddr(), "<14>a: "+strings.Repeat("x", 9000))
	waitFor(t, "one message", func() bool { return len(c.all()) == 1 })
	if got := len(c.all()[0].Text); got != MaxLine-len("<14>a: ") {
		t.Errorf("text = %d bytes, want cut at MaxLine", got)
	}
	if s.Stats().Truncated != 1 {
		t.Errorf("truncated = %d, want 1", s.Stats().Truncated)
	}
}

func TestServeDrainsOnCancel(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	c := newCollector()
	c.gate = make(chan struct{})
	s := &Server{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, pc, c.handle) }()
	send(t, pc.LocalAddr(), "<14>a: 1", "<14>a: 2", "<14>a: 3")
	waitFor(t, "three lines read", func() bool { return s.Stats().Received == 3 })
	cancel()
	close(c.gate)
	if err := <-done; err != nil {
		t.Fatalf("Serve after cancel: %v", err)
	}
	if n := len(c.all()); n != 3 {
		t.Errorf("delivered %d lines before returning, want all 3 queued", n)
	}
	// The socket belongs to the caller: still usable, deadline cleared.
	if err := pc.SetReadDeadline(zeroTime); err != nil {
		t.Errorf("socket unusable after Serve: %v", err)
	}
}

func TestServeReturnsWhenSocketClosed(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- (&Server{}).Serve(context.Background(), pc, func(Message) {}) }()
	pc.Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "syslog serve") {
		t.Errorf("Serve on a closed socket = %v, want a wrapped error", err)
	}
}

func TestServeStreamFraming(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c := newCollector()
	s := &Server{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeStream(ctx, ln, c.handle) }()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	long := "<14>a: " + strings.Repeat("y", 2*MaxLine)
	oc := "<14>1 - h app - - - octet\ncounted"
	fmt.Fprintf(conn, "<30>Mar  1 10:11:12 localhost anaconda[1712]: lf framed\n%s\n%d %s<14>a: last", long, len(oc), oc)
	from := conn.LocalAddr().(*net.TCPAddr).AddrPort()
	conn.Close()
	waitFor(t, "four messages", func() bool { return len(c.all()) == 4 })
	got := c.all()
	if got[0].App != "anaconda" || got[0].ProcID != "1712" || got[0].Text != "lf framed" || got[0].Source != from {
		t.Errorf("LF frame = %+v", got[0])
	}
	if len(got[1].Text) != MaxLine-len("<14>a: ") {
		t.Errorf("long LF frame text = %d bytes, want cut at MaxLine", len(got[1].Text))
	}
	if got[2].Format != RFC5424 || got[2].Text != "octet counted" {
		t.Errorf("octet-counted frame = %+v", got[2])
	}
	if got[3].Text != "last" {
		t.Errorf("unterminated last frame = %+v", got[3])
	}
	if st := s.Stats(); st.Truncated != 1 || st.Received != 4 {
		t.Errorf("stats = %+v", st)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("ServeStream: %v", err)
	}
}

func TestServeStreamCancelClosesIdleSenders(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer ln.Close()
	c := newCollector()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- (&Server{}).ServeStream(ctx, ln, c.handle) }()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "<14>a: hello\n")
	waitFor(t, "one message", func() bool { return len(c.all()) == 1 })
	cancel() // the sender stays connected and silent
	if err := <-done; err != nil {
		t.Fatalf("ServeStream: %v", err)
	}
	if _, err := conn.Read(make([]byte, 1)); err == nil {
		t.Error("sender connection still open after ServeStream returned")
	}
}

var zeroTime time.Time
