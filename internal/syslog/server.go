package syslog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/ratelimit"
)

// DefaultAddr is the standard syslog port on every address, IPv4 and IPv6
// (Linux dual-stack sockets deliver IPv4 senders as v4-mapped addresses,
// which Parse unmaps).
const DefaultAddr = ":514"

// Server receives syslog lines. The zero value is ready to use; one Server
// may serve several sockets at once (UDP and TCP, v4 and v6) and its Stats
// add them up.
type Server struct {
	// QueueLen bounds the lines waiting for the handler per socket;
	// 0 means 4096.
	QueueLen int
	// IdleTimeout closes a TCP sender that sent nothing for this long;
	// 0 means 30 minutes (a quiet %post can take a while, and rsyslog
	// reconnects anyway).
	IdleTimeout time.Duration
	// FirstLineTimeout closes a TCP sender that connected and sent
	// nothing for this long; 0 means 30 s. An installer's rsyslog sends
	// at once; a connection held open idle only takes a slot.
	FirstLineTimeout time.Duration
	// MaxConns bounds concurrent TCP senders; 0 means 1024.
	MaxConns int
	// MaxConnsPerSource bounds concurrent TCP senders from one address;
	// 0 means 8 (an installer needs one).
	MaxConnsPerSource int
	// Limit bounds the lines accepted per source address and in all;
	// lines over it are dropped and counted (nil: no limit).
	Limit *ratelimit.Limiter
	Log   *slog.Logger
	// Now stamps Message.Received; nil means time.Now.
	Now func() time.Time

	received, dropped, malformed, truncated, limited, refused atomic.Uint64

	mu      sync.Mutex
	sources map[netip.Addr]int // open TCP connections per address
}

// Stats counts what the server saw since it was created.
type Stats struct {
	Received  uint64 // lines read from the network
	Dropped   uint64 // UDP lines thrown away because the queue was full
	Malformed uint64 // lines Parse reported an error for (still delivered unless empty)
	Truncated uint64 // lines longer than MaxLine, cut
	Limited   uint64 // lines dropped by the rate limits
	Refused   uint64 // TCP connections refused by the connection limits
}

// Stats returns the counters; they are safe to read while serving.
func (s *Server) Stats() Stats {
	return Stats{s.received.Load(), s.dropped.Load(), s.malformed.Load(), s.truncated.Load(), s.limited.Load(), s.refused.Load()}
}

type line struct {
	b   []byte
	src netip.AddrPort
	at  time.Time
}

// Serve reads datagrams from conn until ctx is done and calls handle for
// each line, in arrival order, from a single goroutine. It never blocks the
// socket on handle: lines that do not fit in the queue are dropped and
// counted. On cancellation it stops reading, hands the queued lines to
// handle, and returns nil. conn is not closed.
func (s *Server) Serve(ctx context.Context, conn net.PacketConn, handle func(Message)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q, wait := s.worker(handle)
	defer wait()
	defer close(q)

	// A past deadline ends the blocking read; it is undone on return
	// because conn belongs to the caller.
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			conn.SetReadDeadline(time.Time{})
		}
	}()
	buf := make([]byte, MaxLine+1) // one spare byte tells a full line from a cut one
	for {
		n, addr, err := conn.ReadFrom(buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("syslog serve %s: %w", conn.LocalAddr(), err)
			}
			s.log().Warn("syslog read failed", "listen", conn.LocalAddr().String(), "err", err)
			continue
		}
		s.received.Add(1)
		if n > MaxLine {
			n = MaxLine
			s.truncated.Add(1)
		}
		src := addrPort(addr)
		if !s.Limit.Allow(src.Addr().Unmap().String(), s.now()) {
			s.limited.Add(1)
			continue
		}
		l := line{b: append([]byte(nil), buf[:n]...), src: src, at: s.now()}
		select {
		case q <- l:
		default:
			s.dropped.Add(1)
		}
	}
}

// ServeStream accepts TCP senders on ln until ctx is done (RFC 6587 framing:
// octet counting or one line per LF, detected per frame). A TCP sender is
// slowed down rather than dropped when the handler falls behind, since it
// has chosen a reliable transport. ln is not closed; open connections are.
func (s *Server) ServeStream(ctx context.Context, ln net.Listener, handle func(Message)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	q, wait := s.worker(handle)
	var conns sync.WaitGroup
	defer func() {
		cancel()
		conns.Wait()
		close(q)
		wait()
	}()
	stop := context.AfterFunc(ctx, func() {
		if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
			d.SetDeadline(time.Unix(1, 0))
		}
	})
	defer func() {
		if !stop() {
			if d, ok := ln.(interface{ SetDeadline(time.Time) error }); ok {
				d.SetDeadline(time.Time{})
			}
		}
	}()
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = 1024
	}
	slots := make(chan struct{}, maxConns)
	perSource := s.MaxConnsPerSource
	if perSource <= 0 {
		perSource = 8
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("syslog serve %s: %w", ln.Addr(), err)
			}
			s.log().Warn("syslog accept failed", "listen", ln.Addr().String(), "err", err)
			time.Sleep(10 * time.Millisecond) // EMFILE and friends: don't spin
			continue
		}
		src := addrPort(c.RemoteAddr()).Addr().Unmap()
		if !s.openSource(src, perSource) {
			s.refused.Add(1)
			c.Close()
			continue
		}
		select {
		case slots <- struct{}{}:
		default:
			s.refused.Add(1)
			s.closeSource(src)
			c.Close()
			continue
		}
		conns.Add(1)
		go func() {
			defer conns.Done()
			defer func() { <-slots }()
			defer s.closeSource(src)
			s.readStream(ctx, c, q)
		}()
	}
}

func (s *Server) readStream(ctx context.Context, c net.Conn, q chan<- line) {
	defer c.Close()
	stop := context.AfterFunc(ctx, func() { c.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = 30 * time.Minute
	}
	first := s.FirstLineTimeout
	if first <= 0 {
		first = 30 * time.Second
	}
	src := addrPort(c.RemoteAddr())
	r := bufio.NewReaderSize(c, 2*MaxLine)
	for n := 0; ; n++ {
		// Set, then check: a cancellation racing with this line is seen
		// either here or by the AfterFunc's past deadline.
		if n == 0 {
			c.SetReadDeadline(time.Now().Add(first))
		} else {
			c.SetReadDeadline(time.Now().Add(idle))
		}
		if ctx.Err() != nil {
			return
		}
		b, cut, err := readFrame(r)
		if len(b) > 0 && !s.Limit.Allow(src.Addr().Unmap().String(), s.now()) {
			s.received.Add(1)
			s.limited.Add(1)
		} else if len(b) > 0 {
			s.received.Add(1)
			if cut {
				s.truncated.Add(1)
			}
			select {
			case q <- line{b: b, src: src, at: s.now()}:
			case <-ctx.Done():
				return
			}
		}
		if err != nil {
			if err != io.EOF && ctx.Err() == nil {
				s.log().Debug("syslog stream ended", "peer", src.String(), "err", err)
			}
			return
		}
	}
}

// openSource counts a new TCP sender from a; false when a has max open.
func (s *Server) openSource(a netip.Addr, max int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources == nil {
		s.sources = map[netip.Addr]int{}
	}
	if s.sources[a] >= max {
		return false
	}
	s.sources[a]++
	return true
}

func (s *Server) closeSource(a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sources[a]--; s.sources[a] <= 0 {
		delete(s.sources, a)
	}
}

// readFrame reads one RFC 6587 frame: "LEN SP MSG" when the frame starts
// with a digit (a syslog message itself starts with '<'), else up to LF.
// Frames longer than MaxLine are cut and the rest skipped.
func readFrame(r *bufio.Reader) ([]byte, bool, error) {
	first, err := r.Peek(1)
	if err != nil {
		return nil, false, err
	}
	if first[0] >= '1' && first[0] <= '9' {
		head, err := r.ReadSlice(' ')
		if err != nil {
			return nil, false, fmt.Errorf("octet count: %w", err)
		}
		n, err := strconv.Atoi(string(head[:len(head)-1]))
		if err != nil || n <= 0 || n > 1<<20 {
			return nil, false, fmt.Errorf("octet count %q", head)
		}
		keep := min(n, MaxLine)
		b := make([]byte, keep)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, false, err
		}
		if _, err := r.Discard(n - keep); err != nil {
			return b, true, err
		}
		return b, n > keep, nil
	}
	var b []byte
	cut := false
	for {
		chunk, err := r.ReadSlice('\n')
		if room := MaxLine - len(b); len(chunk) > room {
			chunk, cut = chunk[:room], true
		}
		b = append(b, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		return b, cut, err
	}
}

// worker starts the goroutine that parses and hands lines on. Close the
// returned queue, then call wait, to drain it.
func (s *Server) worker(handle func(Message)) (chan line, func()) {
	n := s.QueueLen
	if n <= 0 {
		n = 4096
	}
	q := make(chan line, n)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for l := range q {
			m, err := Parse(l.b, l.src, l.at)
			if err != nil {
				s.malformed.Add(1)
				if errors.Is(err, ErrEmpty) {
					continue
				}
			}
			handle(m)
		}
	}()
	return q, func() { <-done }
}

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	}
	if a == nil {
		return netip.AddrPort{}
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return ap
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
