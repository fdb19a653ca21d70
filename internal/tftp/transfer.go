package tftp

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// ErrClientGone: the client's port answered with ICMP port unreachable,
// so the client has exited.
var ErrClientGone = errors.New("tftp: client port unreachable")

// ErrNoFinalAck: the last block was sent but the client went silent before
// acknowledging it. When that ACK is what was lost, the client has the whole
// file and has left; TFTP cannot tell the two apart.
var ErrNoFinalAck = errors.New("tftp: no ACK for the final block")

// transfer sends one file. Blocks are numbered from 1 with uint64 internally
// and wrap to 0 on the wire after 65535, as tftp-hpa, atftp, curl and iPXE
// expect.
type transfer struct {
	conn   *net.UDPConn
	client netip.AddrPort
	neg    negotiated
	src    io.Reader

	idle     time.Duration
	rto      rtoEstimator
	ring     [][]byte // packets of blocks base+1..base+windowSize, block n at n%windowSize
	loaded   uint64   // highest block read from src
	final    uint64   // number of the last block, 0 until known
	finalLen int      // payload length of the last block
	base     uint64   // highest block acknowledged
	sentHigh uint64   // highest block sent in the current window
	// dupAnswered: a duplicate ACK of base already triggered a resend. In
	// window mode a dup ACK means "I lost base+1", but the client may send
	// several; answering each would multiply traffic.
	dupAnswered bool
	lastSend    time.Time
	retransmits int
	rbuf        []byte
	// batch sends a window in one system call; pending is its packets.
	batch   *batchSender
	pending [][]byte
}

func newTransfer(cfg Config, conn *net.UDPConn, client netip.AddrPort, r request, f File) *transfer {
	size := f.Size()
	var src io.Reader
	if size >= 0 {
		src = io.NewSectionReader(f, 0, size) // never send more than the tsize we announced
	} else {
		src = io.NewSectionReader(f, 0, math.MaxInt64)
	}
	br := bufio.NewReaderSize(src, 64<<10)
	src = br
	if r.mode == "netascii" {
		src = newNetasciiReader(br)
		size = -1 // the encoded length is not known without reading the file
	}
	neg := negotiate(r.options, size, limits{maxBlock: cfg.MaxBlockSize, maxWindow: cfg.MaxWindowSize, maxWindowBytes: maxWindowBytes})
	maxRTO := cfg.MaxRetransmit
	idle := cfg.IdleTimeout
	if neg.timeout > 0 {
		// The client's timeout option is its retransmission interval (RFC
		// 2349). It becomes the ceiling: below it the measured round trip
		// decides, so one lost packet on a LAN costs milliseconds, not seconds.
		maxRTO = time.Duration(neg.timeout) * time.Second
		idle = max(idle, 3*maxRTO)
	}
	return &transfer{
		conn: conn, client: client, neg: neg, src: src, idle: idle,
		rto:   newRTO(min(cfg.InitialRetransmit, maxRTO), cfg.MinRetransmit, maxRTO),
		ring:  make([][]byte, neg.windowSize),
		rbuf:  make([]byte, 1024),
		batch: newBatchSender(conn),
	}
}

// run performs the transfer until the last block is acknowledged, the
// client gives up or goes silent, or ctx is done.
func (t *transfer) run(ctx context.Context) error {
	// Closing the socket is the one wake-up that cannot race with the
	// deadline the loop sets before each read.
	stop := context.AfterFunc(ctx, func() { t.conn.Close() })
	defer stop()

	if len(t.neg.oack) > 0 {
		if err := t.negotiate(ctx); err != nil {
			return err
		}
	}
	progress := time.Now()
	if err := t.sendWindow(); err != nil {
		return err
	}
	windowStart, clean := t.lastSend, true
	resend := func() error {
		clean = false
		t.retransmits++
		return t.sendWindow()
	}
	for {
		blk, err := t.nextACK(ctx, resend, progress.Add(t.idle))
		if err != nil {
			if (errors.Is(err, ErrTimeout) || errors.Is(err, ErrClientGone)) && t.final != 0 && t.sentHigh == t.final {
				return ErrNoFinalAck
			}
			return err
		}
		d := uint64(blk - uint16(t.base))
		if d > t.sentHigh-t.base {
			continue // older than base, or for a block never sent
		}
		if d == 0 {
			// Duplicate ACK. In lock-step it is never answered: resending
			// on duplicates is the Sorcerer's Apprentice bug, which doubles
			// every later packet. In window mode the first one asks for a
			// rollback to base+1.
			if t.neg.windowSize > 1 && !t.dupAnswered {
				t.dupAnswered = true
				if err := resend(); err != nil {
					return err
				}
			}
			continue
		}
		// Any ACK for a window sent once is a round-trip sample, including
		// the mid-window ACK of a receiver that lost a block; waiting for a
		// whole window to arrive intact would starve the estimator under
		// loss. Progress also ends the backoff: doubling is for silence.
		now := time.Now()
		if clean {
			t.rto.sample(now.Sub(windowStart))
		} else {
			t.rto.reset()
		}
		t.base += d
		progress, t.dupAnswered = now, false
		if t.base == t.final {
			return nil
		}
		// When the ACK is for a block inside the window, the client lost
		// the one after it: the new window starts there (RFC 7440 rollback).
		if err := t.sendWindow(); err != nil {
			return err
		}
		windowStart, clean = t.lastSend, true
	}
}

// negotiate sends the OACK and waits for the client's ACK 0. The OACK is
// sent once: a client recovers a lost OACK by resending its RRQ and a lost
// ACK 0 by resending the ACK, while a repeated OACK makes atftp abort the
// transfer ("unexpected OACK"). Waiting is cheap, as nothing is buffered
// yet; the idle timeout leaves room for several client retries.
func (t *transfer) negotiate(ctx context.Context) error {
	if err := t.send(appendOACK(nil, t.neg.oack)); err != nil {
		return err
	}
	sent := t.lastSend
	for {
		blk, err := t.nextACK(ctx, nil, sent.Add(t.idle))
		if err != nil {
			return err
		}
		if blk == 0 {
			// No RTT sample: this ACK may be the client's retry after
			// its own timeout, which would inflate the estimate.
			return nil
		}
	}
}

// nextACK waits for the client's next ACK and returns its block number.
// After each retransmission timeout it calls resend, unless resend is nil.
// It fails with ErrTimeout at giveUp.
func (t *transfer) nextACK(ctx context.Context, resend func() error, giveUp time.Time) (uint16, error) {
	for {
		deadline := giveUp
		if rtx := t.lastSend.Add(t.rto.current()); resend != nil && rtx.Before(deadline) {
			deadline = rtx
		}
		if err := t.conn.SetReadDeadline(deadline); err != nil {
			return 0, t.ctxErr(ctx, err)
		}
		n, err := t.conn.Read(t.rbuf)
		if errors.Is(err, syscall.ECONNREFUSED) {
			return 0, ErrClientGone
		}
		if err != nil {
			var ne net.Error
			if !errors.As(err, &ne) || !ne.Timeout() || ctx.Err() != nil {
				return 0, t.ctxErr(ctx, err)
			}
			if !time.Now().Before(giveUp) {
				return 0, ErrTimeout
			}
			t.rto.backoff()
			if err := resend(); err != nil {
				return 0, err
			}
			continue
		}
		if n < 4 {
			continue
		}
		switch binary.BigEndian.Uint16(t.rbuf) {
		case opACK:
			return binary.BigEndian.Uint16(t.rbuf[2:]), nil
		case opERROR:
			return 0, parseError(t.rbuf[:n])
		}
	}
}

func (t *transfer) ctxErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// sendWindow sends blocks base+1 .. base+windowSize (or up to the last
// block), reading blocks from the file the first time they are needed.
// A window of several blocks goes out in one sendmmsg(2).
func (t *transfer) sendWindow() error {
	t.pending = t.pending[:0]
	high := t.base
	for n := t.base + 1; n <= t.base+uint64(t.neg.windowSize); n++ {
		if n > t.loaded {
			if err := t.load(n); err != nil {
				t.send(appendError(nil, ErrCodeNotDefined, "read error"))
				return err
			}
		}
		t.pending = append(t.pending, t.ring[n%uint64(len(t.ring))])
		high = n
		if n == t.final {
			break
		}
	}
	var err error
	if len(t.pending) == 1 || t.batch == nil {
		for _, p := range t.pending {
			if err = t.send(p); err != nil {
				return err
			}
		}
	} else {
		t.lastSend = time.Now()
		if err = t.batch.send(t.pending); err != nil {
			return sendError(err)
		}
	}
	t.sentHigh = high
	return nil
}

// load reads block n, which must be the one after t.loaded, into the ring.
// The slot it overwrites holds block n-windowSize, already acknowledged.
func (t *transfer) load(n uint64) error {
	slot := &t.ring[n%uint64(len(t.ring))]
	if *slot == nil {
		*slot = make([]byte, 4+t.neg.blockSize)
	}
	p := (*slot)[:4+t.neg.blockSize]
	binary.BigEndian.PutUint16(p, opDATA)
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	m, err := io.ReadFull(t.src, p[4:])
	switch {
	case err == io.EOF || err == io.ErrUnexpectedEOF:
		t.final, t.finalLen = n, m
	case err != nil:
		return fmt.Errorf("read block %d: %w", n, err)
	}
	*slot = p[:4+m]
	t.loaded = n
	return nil
}

func (t *transfer) send(p []byte) error {
	t.lastSend = time.Now()
	if _, err := t.conn.Write(p); err != nil {
		return sendError(err)
	}
	return nil
}

func sendError(err error) error {
	if errors.Is(err, syscall.ECONNREFUSED) {
		return ErrClientGone
	}
	return fmt.Errorf("send: %w", err)
}

// ackedBytes is the payload the client has acknowledged.
func (t *transfer) ackedBytes() int64 {
	if t.final != 0 && t.base == t.final {
		return int64(t.final-1)*int64(t.neg.blockSize) + int64(t.finalLen)
	}
	return int64(t.base) * int64(t.neg.blockSize)
}

// rtoEstimator is RFC 6298's retransmission timer: smoothed round trip plus
// four deviations, between a floor and a ceiling, doubled on each timeout
// until the client makes progress again.
type rtoEstimator struct {
	srtt, rttvar time.Duration
	base, rto    time.Duration // without and with backoff
	lo, hi       time.Duration
	measured     bool
}

func newRTO(initial, lo, hi time.Duration) rtoEstimator {
	lo = min(lo, hi)
	r := max(min(initial, hi), lo)
	return rtoEstimator{base: r, rto: r, lo: lo, hi: hi}
}

func (r *rtoEstimator) current() time.Duration { return r.rto }

func (r *rtoEstimator) sample(d time.Duration) {
	if !r.measured {
		r.srtt, r.rttvar, r.measured = d, d/2, true
	} else {
		diff := r.srtt - d
		if diff < 0 {
			diff = -diff
		}
		r.rttvar = (3*r.rttvar + diff) / 4
		r.srtt = (7*r.srtt + d) / 8
	}
	r.base = max(min(r.srtt+4*r.rttvar, r.hi), r.lo)
	r.rto = r.base
}

func (r *rtoEstimator) backoff() { r.rto = min(2*r.rto, r.hi) }

func (r *rtoEstimator) reset() { r.rto = r.base }
