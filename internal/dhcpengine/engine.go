// Package dhcpengine is what kickstand's DHCPv4 and DHCPv6 servers share:
// the socket readers, the bounded queue and workers, the rate limits of
// clients without a reservation, the address allocator, the group commit
// with its store-down mode, the reservations, events, counters and
// metrics. dhcp4 and dhcp6 keep only what differs: parsing a packet into
// facts, answering each message type, and encoding replies. Both families
// thus get the same defences and the same metrics by construction.
//
// Design, and why:
//
//   - Bounded work. One reader per socket feeds a bounded queue served by
//     a fixed number of workers. When the queue is full the packet is
//     dropped and counted (Stats.Dropped): the client retransmits, while
//     an unbounded goroutine per packet made every reply late under load
//     (smee#21). Packets that open an exchange (DISCOVER, Solicit) go
//     first, when the queue is nearly full: the exchanges under way finish.
//
//   - Rate limits where packets are cheapest to drop. A family peeks at
//     a packet's client (chaddr, the DUID) without parsing it; packets of
//     clients without a reservation are held to per-client and global
//     token buckets before they take queue room that reserved hosts need.
//
//   - Offers from memory, binds durable. An offer (OFFER, Advertise) is
//     chosen from what the server knows of its lease space and written
//     nowhere; a bind is committed, fsync'd, in a group commit before the
//     ACK or Reply that announces it leaves, so a kill -9 or power cut
//     never forgets an address a client was told it holds.
//
//   - The store arbitrates. A bind is a conditional write, so two servers
//     sharing PostgreSQL cannot give one address to two clients
//     (coredhcp#142); the loser learns the address is taken and searches
//     elsewhere.
//
//   - Store outages are survived, not guessed through: new clients are
//     refused, clients whose lease the server knows is durable are
//     answered for the time it has left, and the outage is logged once
//     when it starts and once when it ends.
package dhcpengine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Handler is one family's part: dhcp4 and dhcp6 implement it.
type Handler interface {
	// Peek reads a packet's client without parsing the packet: the key the
	// per-client rate limit counts it under, and the keys its host may be
	// found by. ok is false for a packet the limits do not apply to.
	Peek(p *Packet) (client string, k boot.Keys, ok bool)
	// Opens reads, without parsing the packet, whether it opens an
	// exchange (a DHCPv4 DISCOVER, a DHCPv6 Solicit): under overload those
	// are dropped first, so that the exchanges already under way finish.
	Opens(p *Packet) bool
	// Handle answers one packet. It runs on a worker; a reply that needs
	// a lease is sent from the commit's continuation (Engine.Commit).
	Handle(ctx context.Context, p *Packet)
}

// Socket is one socket the engine reads: the family's link (what it needs
// to answer: the interface, its addresses) and the connection.
type Socket struct {
	Conn Conn
	Port int
	Link any
}

// Conn reads and sends datagrams: a *net.UDPConn, or a recorder in tests.
type Conn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

// Packet is one datagram as read.
type Packet struct {
	Data   []byte
	Src    netip.AddrPort
	Socket *Socket
	// Pending, when set, counts lease commits still to finish (tests).
	Pending *sync.WaitGroup
}

// Booter is the boot decision and the host index it owns (boot.Booter
// satisfies it). The reservations are its index's answer: the host a
// client is, and whose static address an address is. Both are answered
// from memory, for every packet; keeping the index current on a reload or
// a live change is the index's owner's job.
type Booter interface {
	BootSpec(ctx context.Context, f boot.Facts) (boot.Plan, error)
	Match(ctx context.Context, k boot.Keys) (*inventory.HostRecord, error)
	ReservedBy(a netip.Addr) string
}

// Options configure an Engine.
type Options struct {
	Family int // 4 or 6; set by the family's New
	// Config returns the config in force. It is read per packet, so
	// subnets, options and reservations follow a reload.
	Config func() *inventory.Config
	Booter Booter
	Store  store.Store
	Log    *slog.Logger
	// OnEvent, when set, sees every exchange step, from the worker or the
	// committer handling the packet. It must not block.
	OnEvent func(Event)
}

// Engine runs one family's server machinery.
type Engine struct {
	opt Options
	log *slog.Logger

	// Tunables; tests change them (the commit's before Start).
	CommitWindow time.Duration
	CommitMax    int           // ops per transaction
	OfferHold    time.Duration // how long an offer (OFFER, Advertise) holds its address
	DeclineHold  time.Duration // how long a declined address is quarantined

	ready chan struct{}

	commit *committer
	limit  atomic.Pointer[limiter]

	received, dropped, malformed, ignored, replies, naks, unmatched atomic.Uint64
}

// memLeaseLimit bounds the leases kept in memory (about 200 bytes each).
const memLeaseLimit = 1 << 20

// New checks the options and makes an engine; it opens nothing.
func New(o Options) (*Engine, error) {
	if o.Config == nil || o.Booter == nil || o.Store == nil {
		return nil, fmt.Errorf("dhcp%d: Config, Booter and Store are required", o.Family)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	o.Log = o.Log.With("proto", fmt.Sprintf("dhcp%d", o.Family))
	e := &Engine{opt: o, log: o.Log, CommitWindow: time.Millisecond, CommitMax: 512,
		OfferHold: 30 * time.Second, DeclineHold: 10 * time.Minute, ready: make(chan struct{})}
	e.commit = &committer{store: o.Store, log: e.log, in: make(chan *pending, commitQueue),
		mem: newMemLeases(o.Family, memLeaseLimit, e.reservedForOther)}
	return e, nil
}

// Config is the config in force.
func (e *Engine) Config() *inventory.Config { return e.opt.Config() }

// commitQueue bounds the packets waiting for a transaction.
const commitQueue = 4096

// Start runs the group commit until stop is called (Run does it; tests
// that hand packets to Handle themselves call it).
func (e *Engine) Start(ctx context.Context) (stop func()) {
	e.commit.window, e.commit.max = e.CommitWindow, e.CommitMax
	e.commit.replies = make(chan []func(), 16)
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done, replied := make(chan struct{}), make(chan struct{})
	go func() { defer close(replied); e.commit.reply() }()
	go func() { defer close(done); e.commit.run(ctx); close(e.commit.replies) }()
	return func() { cancel(); <-done; <-replied }
}

// Log is the family's logger.
func (e *Engine) Log() *slog.Logger { return e.log }

// SetLimits replaces the rate limits of clients without a reservation
// (Limits{Off: true} for benchmarks).
func (e *Engine) SetLimits(l Limits) { e.limit.Store(newLimiter(l)) }

// LimitsDefault sets the rate limits unless SetLimits already did: the
// config's, which a benchmark or test may have overridden.
func (e *Engine) LimitsDefault(l Limits) { e.limit.CompareAndSwap(nil, newLimiter(l)) }

func (e *Engine) limiter() *limiter {
	if l := e.limit.Load(); l != nil {
		return l
	}
	e.limit.CompareAndSwap(nil, newLimiter(Limits{}))
	return e.limit.Load()
}

// Run reads socks until ctx is done, with workers answering through h.
// The order of shutdown matters: readers stop first, then the workers
// drain the queue without answering, then the committer finishes what it
// holds, so no reply is sent for a lease that was not committed.
func (e *Engine) Run(ctx context.Context, h Handler, socks []*Socket, workers int, ready func()) {
	workers = max(workers, 1)
	queue := make(chan *Packet, workers*16)
	stopCommit := e.Start(ctx)
	// The workers' lease changes are committed with a context that
	// outlives ctx: what was handed over is finished, not abandoned.
	commitCtx := context.WithoutCancel(ctx)

	var rwg, wwg sync.WaitGroup
	for _, s := range socks {
		rwg.Add(1)
		go func() { defer rwg.Done(); e.read(h, s, queue) }()
	}
	for i := 0; i < workers; i++ {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for p := range queue {
				if ctx.Err() != nil {
					continue // shutting down: drain without answering
				}
				e.Handle(commitCtx, h, p)
			}
		}()
	}
	if ready != nil {
		ready()
	}
	<-ctx.Done()
	for _, s := range socks {
		if c, ok := s.Conn.(io.Closer); ok {
			c.Close() // unblocks the readers
		}
	}
	rwg.Wait()
	close(queue)
	wwg.Wait()
	stopCommit()
}

// Handle runs h on one packet with the per-packet deadline; tests call it
// directly.
func (e *Engine) Handle(ctx context.Context, h Handler, p *Packet) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	h.Handle(ctx, p)
}

// read feeds one socket's packets to the worker queue. When the queue is
// full the packet is dropped and counted: the client retransmits, and a
// late reply is worse than none (smee#21). Past three quarters full,
// packets that open an exchange are dropped too: the rest of the room is
// for those that finish one (a REQUEST after its OFFER), or a storm of
// DISCOVERs fills the queue with offers whose REQUESTs are then dropped,
// and almost no client completes (476 of 4,000 DORA/s in one run).
func (e *Engine) read(h Handler, s *Socket, queue chan<- *Packet) {
	// One buffer per socket, each packet copied out at its size: a DHCP
	// packet is a few hundred bytes, and a fresh 1,500-byte buffer per
	// packet was most of the garbage a busy server made.
	buf := make([]byte, 1500)
	for {
		n, src, err := s.Conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Warn("read", "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		e.received.Add(1)
		p := &Packet{Data: append([]byte(nil), buf[:n]...), Src: src, Socket: s}
		if !e.admit(h, p) {
			continue
		}
		if 4*len(queue) >= 3*cap(queue) && h.Opens(p) {
			e.dropped.Add(1)
			continue
		}
		select {
		case queue <- p:
		default:
			e.dropped.Add(1)
		}
	}
}

// admit applies the rate limits as a packet is read, before it is parsed
// or queued: under a flood, unreserved clients' packets are dropped where
// they cost least, and the queue keeps room for reserved hosts' packets,
// which would otherwise be dropped with the flood when it fills.
func (e *Engine) admit(h Handler, p *Packet) bool {
	l := e.limiter()
	if l.lim.Off {
		return true
	}
	client, k, ok := h.Peek(p)
	if !ok {
		return true
	}
	if h, err := e.opt.Booter.Match(context.Background(), k); h != nil || err != nil {
		return true
	}
	return l.allow(client, time.Now(), e.log)
}

// Plan asks the boot decision. A client that does not say it is network
// boot firmware (no PXE/HTTP class, arch or iPXE marker) is an operating
// system asking for an address, and gets no boot options.
func (e *Engine) Plan(ctx context.Context, f boot.Facts) boot.Plan {
	if f.Firmware == boot.FirmwareUnknown {
		return boot.Plan{Action: boot.ActionNone}
	}
	p, err := e.opt.Booter.BootSpec(ctx, f)
	if err != nil {
		e.log.Warn("boot decision failed: no boot options sent", "mac", f.MAC, "err", err)
		return boot.Plan{Action: boot.ActionNone}
	}
	return p
}

// Reservation is the client's host (nil if it is none), as the boot
// decision will identify it.
func (e *Engine) Reservation(ctx context.Context, k boot.Keys) (*inventory.HostRecord, error) {
	return e.opt.Booter.Match(ctx, k)
}

func (e *Engine) reservedForOther(a netip.Addr, host string) bool {
	owner := e.opt.Booter.ReservedBy(a)
	return owner != "" && owner != host
}

// Offer chooses an address for op's client from memory and holds it for
// OfferHold; nothing is written. While the store is down only a client
// whose durable lease is still running gets one (that one).
func (e *Engine) Offer(ctx context.Context, op store.LeaseOp) (store.LeaseResult, error) {
	e.commit.ops.Add(1)
	return e.commit.offer(ctx, &op, op.Now.Add(e.OfferHold))
}

// chooseTries bounds how often Assign looks for another address when the
// store says the one chosen was taken (by another server) meanwhile.
const chooseTries = 3

// Commit hands a packet's lease changes to the group commit; done runs
// once they are durable (or failed), on the committer's goroutine, and
// must be quick: it sends the reply.
func (e *Engine) Commit(ctx context.Context, p *Packet, ops []store.LeaseOp, done func([]store.LeaseResult, error)) {
	if p != nil && p.Pending != nil {
		p.Pending.Add(1)
		orig := done
		done = func(r []store.LeaseResult, err error) { defer p.Pending.Done(); orig(r, err) }
	}
	e.commit.enqueue(ctx, ops, done)
}

// Assign is Commit for binds whose address the server chooses (DHCPv6: a
// Request, Renew or Rebind may be answered with another address than it
// names): each bind that is not a reservation gets an address from
// memory, op.Addr being the client's hint, and one that another server
// took meanwhile is chosen again, a few times. An op for which no address
// can be found fails alone.
func (e *Engine) Assign(ctx context.Context, p *Packet, ops []store.LeaseOp, done func([]store.LeaseResult, error)) {
	out := make([]store.LeaseResult, len(ops))
	var try func(round int, idx []int)
	try = func(round int, idx []int) {
		var batch []store.LeaseOp
		var at []int
		for _, i := range idx {
			op := ops[i]
			if op.Kind == store.LeaseBind && !op.Reserved {
				r, err := e.commit.offer(ctx, &op, op.Now.Add(e.OfferHold))
				if err != nil {
					done(nil, err)
					return
				}
				if r.Err != nil {
					out[i] = r
					continue
				}
				op.Addr = r.Lease.Addr
			}
			batch = append(batch, op)
			at = append(at, i)
		}
		if len(batch) == 0 {
			done(out, nil)
			return
		}
		e.Commit(ctx, p, batch, func(res []store.LeaseResult, err error) {
			if err != nil {
				done(nil, err)
				return
			}
			var again []int
			for k, r := range res {
				i := at[k]
				out[i] = r
				if errors.Is(r.Err, store.ErrAddressTaken) && !ops[i].Reserved && round+1 < chooseTries {
					again = append(again, i)
				}
			}
			if len(again) == 0 {
				done(out, nil)
				return
			}
			// On the committer's goroutine: hand the retry to another,
			// which may wait for room in the commit queue.
			go try(round+1, again)
		})
	}
	all := make([]int, len(ops))
	for i := range all {
		all[i] = i
	}
	try(0, all)
}

// Emit hands an event to OnEvent; events of clients that match no host are
// counted (Stats.Unmatched) so that the consumer may drop them.
func (e *Engine) Emit(ev Event) {
	if ev.Host == "" {
		e.unmatched.Add(1)
	}
	if e.opt.OnEvent != nil {
		ev.Family = e.opt.Family
		ev.Time = time.Now()
		e.opt.OnEvent(ev)
	}
}

// Send writes a reply to dst through the socket p came in on.
func (e *Engine) Send(p *Packet, b []byte, dst netip.AddrPort) {
	if _, err := p.Socket.Conn.WriteToUDPAddrPort(b, dst); err != nil {
		if !errors.Is(err, net.ErrClosed) { // closed: shutting down
			e.log.Warn("send", "to", dst, "err", err)
		}
		return
	}
	e.replies.Add(1)
}

// Malformed, Ignored and Nak count what a family's handler saw.
func (e *Engine) Malformed() { e.malformed.Add(1) }
func (e *Engine) Ignored()   { e.ignored.Add(1) }
func (e *Engine) Nak()       { e.naks.Add(1) }

// Stats are an engine's counters since New.
type Stats struct {
	Received  uint64 // packets read
	Dropped   uint64 // packets dropped because every worker was busy
	Malformed uint64 // packets that did not parse
	Ignored   uint64 // well-formed packets not for this server
	Replies   uint64 // replies sent
	Naks      uint64 // DHCPv4 NAKs
	Batches   uint64 // lease transactions committed
	LeaseOps  uint64 // lease changes handled (offers held in memory, the rest committed)
	// StoreDown is set while the lease store is unavailable: new clients
	// are refused (Refused counts them) and renewals of leases known to
	// be durable are answered for their remaining time (FromMemory).
	StoreDown  bool
	Refused    uint64
	FromMemory uint64
	Limited    uint64 // packets of unreserved clients dropped by the rate limits
	Unmatched  uint64 // events of clients that match no host
}

// Stats returns the counters.
func (e *Engine) Stats() Stats {
	c := e.commit
	return Stats{Received: e.received.Load(), Dropped: e.dropped.Load(), Malformed: e.malformed.Load(),
		Ignored: e.ignored.Load(), Replies: e.replies.Load(), Naks: e.naks.Load(),
		Batches: c.batches.Load(), LeaseOps: c.ops.Load(),
		StoreDown: c.down.Load(), Refused: c.refused.Load(), FromMemory: c.fromMem.Load(),
		Limited: e.limiter().limited(), Unmatched: e.unmatched.Load()}
}

// Core is the engine itself, for code that holds a family's server (whose
// Handle shadows the engine's).
func (e *Engine) Core() *Engine { return e }
