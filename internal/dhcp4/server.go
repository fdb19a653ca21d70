package dhcp4

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Booter is the boot decision (boot.Booter satisfies it).
type Booter interface {
	BootSpec(ctx context.Context, f boot.Facts) (boot.Plan, error)
}

// Options configure a Server.
type Options struct {
	// Config returns the config in force. It is read per packet, so
	// subnets, options and reservations follow a reload; the interfaces,
	// the mode's sockets and the worker count are fixed when Serve starts.
	Config func() *inventory.Config
	Booter Booter
	Store  store.Store
	Log    *slog.Logger
	// OnEvent, when set, sees every lease event. It is called from the
	// worker handling the packet and must not block.
	OnEvent func(Event)
}

// EventKind names a step of the DHCP exchange.
type EventKind string

const (
	EventDiscover EventKind = "discover"
	EventOffer    EventKind = "offer"
	EventRequest  EventKind = "request"
	EventAck      EventKind = "ack"
	EventNak      EventKind = "nak"
	EventRelease  EventKind = "release"
	EventDecline  EventKind = "decline"
	EventInform   EventKind = "inform"
)

// Event is one step of a machine's DHCP exchange, for the lifecycle
// timeline.
type Event struct {
	Time  time.Time
	Kind  EventKind
	MAC   string
	IP    netip.Addr // the address offered, acked, requested or given back
	Host  string     // the inventory host, when known
	Relay netip.Addr // giaddr, when relayed
	// BootFile is what the client was told to boot, if anything.
	BootFile string
	// Reason says why a NAK was sent.
	Reason string
}

// Stats are the server's counters since New.
type Stats struct {
	Received  uint64 // packets read
	Dropped   uint64 // packets dropped because every worker was busy
	Malformed uint64 // packets that did not parse
	Replies   uint64 // replies sent
	Naks      uint64
	Batches   uint64 // lease transactions committed
	LeaseOps  uint64 // lease changes handled (offers are held in memory, the rest committed)
	// StoreDown is set while the lease store is unavailable: new clients
	// are refused (Refused counts them) and renewals of leases known to
	// be durable are answered for their remaining time (FromMemory).
	StoreDown  bool
	Refused    uint64
	FromMemory uint64
	Limited    uint64 // packets of unreserved clients dropped by the rate limits
}

// Server is the DHCPv4 server (full or proxyDHCP).
type Server struct {
	opt   Options
	log   *slog.Logger
	view  atomic.Pointer[view]
	ready chan struct{}

	// Tunables; tests shorten them.
	offerHold    time.Duration // how long an OFFER holds its address
	declineHold  time.Duration // how long a DECLINEd address is quarantined
	commitWindow time.Duration
	commitMax    int // ops per transaction
	commitQueue  int // ops waiting for a transaction

	received, dropped, malformed, replies, naks atomic.Uint64
	commit                                      atomic.Pointer[committer]
	hosts                                       atomic.Pointer[hostIndex]
	hostsMu                                     sync.Mutex // one index refresh at a time

	limit atomic.Pointer[limiter] // unreserved clients' rate limits (ratelimit.go)
}

// view is the config in force and what is derived from it, rebuilt when
// the config pointer changes (a reload).
type view struct {
	cfg     *inventory.Config
	subnets []subnet
}

// New checks the options. It opens nothing: Serve does.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Booter == nil || o.Store == nil {
		return nil, errors.New("dhcp4: Config, Booter and Store are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{
		opt: o, log: o.Log.With("proto", "dhcp4"), ready: make(chan struct{}),
		offerHold: 30 * time.Second, declineHold: 10 * time.Minute,
		commitWindow: time.Millisecond, commitMax: 512, commitQueue: 4096,
	}, nil
}

// Ready is closed once Serve has opened its sockets.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{Received: s.received.Load(), Dropped: s.dropped.Load(), Malformed: s.malformed.Load(),
		Replies: s.replies.Load(), Naks: s.naks.Load()}
	if c := s.commit.Load(); c != nil {
		st.Batches, st.LeaseOps = c.batches.Load(), c.ops.Load()
		st.StoreDown, st.Refused, st.FromMemory = c.down.Load(), c.refused.Load(), c.fromCache.Load()
	}
	st.Limited = s.limiter().limited.Load()
	return st
}

func (s *Server) current() *view {
	cfg := s.opt.Config()
	if v := s.view.Load(); v != nil && v.cfg == cfg {
		return v
	}
	v := &view{cfg: cfg, subnets: parseSubnets(&cfg.DHCP)}
	s.view.Store(v)
	return v
}

// link is one interface kickstand serves on.
type link struct {
	name  string
	local netip.Addr     // its first IPv4 address: server identifier, siaddr
	nets  []netip.Prefix // all its IPv4 networks, to find a client's subnet
}

// replier sends replies; a *net.UDPConn, or a recorder in tests.
type replier interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

type job struct {
	link *link
	conn replier
	port int
	data []byte
	src  netip.AddrPort
	// pending, when set, counts lease commits still to finish (tests).
	pending *sync.WaitGroup
}

// Serve runs the server until ctx is done. With DHCP disabled it only
// waits: a DHCP server that starts by itself on a LAN is an outage. The
// sockets are opened on the calling goroutine, so a caller may run Serve on
// a thread inside another network namespace.
func (s *Server) Serve(ctx context.Context) error {
	cfg := s.opt.Config()
	if cfg == nil || !cfg.DHCP.Enabled {
		s.log.Info("DHCPv4 disabled")
		close(s.ready)
		<-ctx.Done()
		return nil
	}
	d := cfg.DHCP
	var conns []*net.UDPConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	type reader struct {
		link *link
		conn *net.UDPConn
		port int
	}
	var readers []reader
	for _, name := range d.Interfaces {
		l, err := openLink(name)
		if err != nil {
			closeAll()
			return fmt.Errorf("dhcp4: %w", err)
		}
		// 4011 in both modes: a reply that says "PXEClient" makes UEFI
		// firmware (EDK2's BINL offer) ask the boot server on 4011 before
		// it loads anything, even from a full DHCP server.
		ports := []int{serverPort, pxePort}
		for _, port := range ports {
			c, err := listenUDP(ctx, name, port)
			if err != nil {
				closeAll()
				return fmt.Errorf("dhcp4: listen on %s port %d: %w", name, port, err)
			}
			conns = append(conns, c)
			readers = append(readers, reader{l, c, port})
		}
		s.log.Info("DHCPv4 listening", "interface", name, "address", l.local, "mode", d.Mode)
	}

	workers := max(d.Workers, 1)
	queue := make(chan job, workers*16)
	commitCtx, stopCommit := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommit()
	c := newCommitter(s.opt.Store, s.commitWindow, s.commitMax, s.commitQueue)
	c.log = s.log
	s.commit.Store(c)
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() { defer cwg.Done(); c.run(commitCtx) }()

	var rwg, wwg sync.WaitGroup
	for _, r := range readers {
		rwg.Add(1)
		go func() { defer rwg.Done(); s.read(r.link, r.conn, r.port, queue) }()
	}
	for i := 0; i < workers; i++ {
		wwg.Add(1)
		go func() {
			defer wwg.Done()
			for j := range queue {
				if ctx.Err() != nil {
					continue // shutting down: drain without answering
				}
				s.handle(commitCtx, j)
			}
		}()
	}
	close(s.ready)
	<-ctx.Done()
	closeAll() // unblocks the readers
	rwg.Wait()
	close(queue)
	wwg.Wait()
	stopCommit()
	cwg.Wait()
	return nil
}

func openLink(name string) (*link, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	addrs, err := ifi.Addrs()
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", name, err)
	}
	l := &link{name: name}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		if !ok || !ip.Unmap().Is4() {
			continue
		}
		p := netip.PrefixFrom(ip.Unmap(), ones)
		l.nets = append(l.nets, p)
		if !l.local.IsValid() {
			l.local = p.Addr()
		}
	}
	if !l.local.IsValid() {
		return nil, fmt.Errorf("interface %s has no IPv4 address: DHCP needs one as its server identifier", name)
	}
	return l, nil
}

// read feeds one socket's packets to the worker queue. When the queue is
// full the packet is dropped and counted: the client retransmits, and a
// late reply is worse than none (smee#21).
func (s *Server) read(l *link, conn *net.UDPConn, port int, queue chan<- job) {
	for {
		buf := make([]byte, 1500)
		n, src, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("read", "interface", l.name, "err", err)
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.received.Add(1)
		if !s.admit(buf[:n], port) {
			continue // rate limited (ratelimit.go)
		}
		select {
		case queue <- job{link: l, conn: conn, port: port, data: buf[:n], src: src}:
		default:
			s.dropped.Add(1)
		}
	}
}

func (s *Server) emit(e Event) {
	if s.opt.OnEvent != nil {
		e.Time = time.Now()
		s.opt.OnEvent(e)
	}
}

func (s *Server) handle(ctx context.Context, j job) {
	req, err := dhcpv4.FromBytes(j.data)
	if err != nil || req.OpCode != dhcpv4.OpcodeBootRequest {
		s.malformed.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v := s.current()
	f := ParseFacts(req, j.link.local)
	proxy := v.cfg.DHCP.Mode == "proxy"
	switch {
	case j.port == pxePort:
		s.bootServer(ctx, j, req, f)
	case proxy:
		s.proxyOffer(ctx, j, req, f)
	default:
		s.full(ctx, j, req, f, v)
	}
}

// plan asks the boot decision. A client that does not say it is network
// boot firmware (no PXE/HTTP class, arch or iPXE marker) is an operating
// system asking for an address, and gets no boot options.
func (s *Server) plan(ctx context.Context, f boot.Facts) boot.Plan {
	if f.Firmware == boot.FirmwareUnknown {
		return boot.Plan{Action: boot.ActionNone}
	}
	p, err := s.opt.Booter.BootSpec(ctx, f)
	if err != nil {
		s.log.Warn("boot decision failed: no boot options sent", "mac", f.MAC, "err", err)
		return boot.Plan{Action: boot.ActionNone}
	}
	return p
}

func (s *Server) send(j job, r *dhcpv4.DHCPv4, dst netip.AddrPort) {
	if _, err := j.conn.WriteToUDPAddrPort(r.ToBytes(), dst); err != nil {
		s.log.Warn("send", "interface", j.link.name, "to", dst, "err", err)
		return
	}
	s.replies.Add(1)
}

// hostRefresh bounds how stale the in-memory host index may get. A config
// reload replaces it at once; a host added through the API waits at most
// this long for its reservation.
const hostRefresh = 5 * time.Second

// hostIndex maps MACs to inventory hosts, so that a packet costs no store
// query to learn its reservation (modernc SQLite parses every statement,
// and a boot storm is thousands of packets a second).
type hostIndex struct {
	cfg   *inventory.Config
	at    time.Time
	byMAC map[string]hostEntry
}

type hostEntry struct {
	name string
	v4   netip.Prefix // invalid when the host has no IPv4 address
}

func (s *Server) hostIndex(ctx context.Context) (*hostIndex, error) {
	cfg := s.opt.Config()
	fresh := func(ix *hostIndex) bool { return ix != nil && ix.cfg == cfg && time.Since(ix.at) < hostRefresh }
	ix := s.hosts.Load()
	if fresh(ix) {
		return ix, nil
	}
	// One worker refreshes; the others keep using the old index meanwhile,
	// unless there is none for this config yet.
	if ix != nil && ix.cfg == cfg {
		if !s.hostsMu.TryLock() {
			return ix, nil
		}
	} else {
		s.hostsMu.Lock()
	}
	defer s.hostsMu.Unlock()
	if ix = s.hosts.Load(); fresh(ix) {
		return ix, nil
	}
	recs, err := s.opt.Store.Hosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("load hosts: %w", err)
	}
	n := &hostIndex{cfg: cfg, at: time.Now(), byMAC: map[string]hostEntry{}}
	for i := range recs {
		e := hostEntry{name: recs[i].Name}
		if p, ok := recs[i].Addr4(); ok && p.Addr().Is4() {
			e.v4 = p
		}
		for _, m := range recs[i].MACs {
			n.byMAC[inventory.NormalMAC(m)] = e
		}
	}
	s.hosts.Store(n)
	return n, nil
}

// reservation is the client's inventory host and, if that host's IPv4
// address lies in the subnet, its reserved address.
func (s *Server) reservation(ctx context.Context, mac string, sub *subnet) (host string, addr netip.Addr, err error) {
	ix, err := s.hostIndex(ctx)
	if err != nil {
		return "", netip.Addr{}, err
	}
	e, ok := ix.byMAC[mac]
	if !ok {
		return "", netip.Addr{}, nil
	}
	if e.v4.IsValid() && sub.prefix.Contains(e.v4.Addr()) {
		return e.name, e.v4.Addr(), nil
	}
	return e.name, netip.Addr{}, nil
}

// lease hands op to the group commit; then runs once it is durable (or
// failed). j.pending, when set, lets tests wait for that.
func (s *Server) lease(ctx context.Context, j job, op store.LeaseOp, then func(store.LeaseResult, error)) {
	if j.pending != nil {
		j.pending.Add(1)
		orig := then
		then = func(r store.LeaseResult, err error) { defer j.pending.Done(); orig(r, err) }
	}
	s.committer().enqueue(ctx, op, then)
}

// full is full-server mode: addresses and boot options. Everything that
// does not depend on the lease (the store lookup, the boot decision) is
// done here; the reply itself is built and sent once the lease is durable.
func (s *Server) full(ctx context.Context, j job, req *dhcpv4.DHCPv4, f boot.Facts, v *view) {
	mt := req.MessageType()
	log := s.log.With("mac", f.MAC, "xid", req.TransactionID.String(), "type", mt.String())
	if f.MAC == "" {
		log.Debug("ignored: not an Ethernet client")
		return
	}
	sub := selectSubnet(v.subnets, f.Relay, j.link.nets)
	if sub == nil {
		log.Debug("ignored: no configured subnet for this client", "relay", f.Relay, "interface", j.link.name)
		return
	}
	host, resv, err := s.reservation(ctx, f.MAC, sub)
	if err != nil {
		// Without knowing the reservation, a pool address could go to a
		// reserved host; stay silent and let the client retry.
		log.Warn("store lookup failed: no reply", "err", err)
		return
	}
	now := time.Now()
	op := store.LeaseOp{MAC: f.MAC, Host: host, Now: now, PoolFirst: sub.first, PoolLast: sub.last}
	if v := req.Options.Get(dhcpv4.OptionClientIdentifier); len(v) > 0 {
		op.ClientID = hex.EncodeToString(v)
	}
	requested, _ := addr4(req.RequestedIPAddress())
	ev := Event{MAC: f.MAC, Host: host, Relay: f.Relay}
	// reply finishes an OFFER or ACK for addr.
	// A lease answered from memory while the store is down is given for
	// the time it has left, never more.
	reply := func(mt dhcpv4.MessageType, l store.Lease, addr netip.Addr, p boot.Plan) {
		lease := sub.lease
		if left := l.Expires.Sub(now); l.State == store.LeaseBound && left > 0 && left < lease-time.Second {
			lease = left
		}
		r := newReply(req, mt, j.link.local)
		r.YourIPAddr = addr.AsSlice()
		if ci, ok := addr4(req.ClientIPAddr); ok && mt == dhcpv4.MessageTypeAck {
			r.ClientIPAddr = ci.AsSlice()
		}
		addNetwork(r, sub, host, lease)
		if addBoot(r, req, f, p, j.link.local, false) {
			ev.BootFile = p.BootFile
		}
		if ev.Host == "" {
			ev.Host = p.Host
		}
		s.send(j, r, replyAddr(req, false))
	}

	switch mt {
	case dhcpv4.MessageTypeDiscover:
		ev.Kind, ev.IP = EventDiscover, requested
		s.emit(ev)
		op.Kind, op.Until, op.Addr = store.LeaseOffer, now.Add(s.offerHold), requested
		if resv.IsValid() {
			op.Addr, op.Reserved = resv, true
		}
		p := s.plan(ctx, f)
		s.lease(ctx, j, op, func(res store.LeaseResult, err error) {
			if err = errors.Join(err, res.Err); err != nil {
				log.Warn("no offer", "err", err)
				return
			}
			reply(dhcpv4.MessageTypeOffer, res.Lease, res.Lease.Addr, p)
			ev.Kind, ev.IP = EventOffer, res.Lease.Addr
			s.emit(ev)
		})

	case dhcpv4.MessageTypeRequest:
		if sid, ok := addr4(req.ServerIdentifier()); ok && sid != j.link.local {
			return // the client chose another server's offer
		}
		want := requested
		if !want.IsValid() {
			want, _ = addr4(req.ClientIPAddr)
		}
		if !want.IsValid() {
			log.Debug("ignored: REQUEST names no address")
			return
		}
		ev.Kind, ev.IP = EventRequest, want
		s.emit(ev)
		nak := func(reason string) {
			r := newReply(req, dhcpv4.MessageTypeNak, j.link.local)
			if f.Relay.IsValid() {
				r.SetBroadcast() // RFC 2131 4.3.2
			}
			r.UpdateOption(dhcpv4.OptMessage(reason))
			s.send(j, r, replyAddr(req, true))
			s.naks.Add(1)
			log.Info("NAK", "addr", want, "reason", reason)
			ev.Kind, ev.Reason = EventNak, reason
			s.emit(ev)
		}
		switch {
		case !sub.prefix.Contains(want):
			nak(fmt.Sprintf("%s is not on this network (%s)", want, sub.prefix))
			return
		case resv.IsValid() && want != resv:
			nak(fmt.Sprintf("%s is reserved %s", host, resv))
			return
		}
		op.Kind, op.Addr, op.Until, op.Reserved = store.LeaseBind, want, now.Add(sub.lease), resv.IsValid()
		p := s.plan(ctx, f)
		s.lease(ctx, j, op, func(res store.LeaseResult, err error) {
			if err != nil {
				log.Warn("lease commit failed: no ACK", "err", err)
				return
			}
			if res.Err != nil {
				nak(res.Err.Error())
				return
			}
			reply(dhcpv4.MessageTypeAck, res.Lease, want, p)
			ev.Kind = EventAck
			s.emit(ev)
		})

	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		op.Kind, ev.Kind = store.LeaseRelease, EventRelease
		op.Addr, _ = addr4(req.ClientIPAddr)
		if mt == dhcpv4.MessageTypeDecline {
			op.Kind, op.Addr, op.Until, ev.Kind = store.LeaseDecline, requested, now.Add(s.declineHold), EventDecline
		}
		if !op.Addr.IsValid() {
			return
		}
		ev.IP = op.Addr
		s.lease(ctx, j, op, func(res store.LeaseResult, err error) {
			if err = errors.Join(err, res.Err); err != nil {
				log.Info("lease not given back", "addr", op.Addr, "err", err)
				return
			}
			if mt == dhcpv4.MessageTypeDecline {
				log.Warn("address declined: another machine uses it; quarantined", "addr", op.Addr, "until", op.Until)
			}
			s.emit(ev)
		})

	case dhcpv4.MessageTypeInform:
		ci, ok := addr4(req.ClientIPAddr)
		if !ok {
			return
		}
		ev.Kind, ev.IP = EventInform, ci
		s.emit(ev)
		r := newReply(req, dhcpv4.MessageTypeAck, j.link.local)
		r.ClientIPAddr = ci.AsSlice()
		addNetwork(r, sub, host, 0)
		addBoot(r, req, f, s.plan(ctx, f), j.link.local, false)
		s.send(j, r, replyAddr(req, false))
	}
}

func (s *Server) committer() *committer { return s.commit.Load() }

// proxyOffer answers a PXE client's DISCOVER beside another DHCP server:
// boot options, no address. Everything else on port 67 is that server's.
func (s *Server) proxyOffer(ctx context.Context, j job, req *dhcpv4.DHCPv4, f boot.Facts) {
	if req.MessageType() == dhcpv4.MessageTypeRequest {
		// The other server's client names the address it takes: the
		// only way a proxy learns which machine uses which address.
		if ip, ok := addr4(req.RequestedIPAddress()); ok {
			s.emit(Event{Kind: EventRequest, MAC: f.MAC, IP: ip, Relay: f.Relay})
		}
		return
	}
	if req.MessageType() != dhcpv4.MessageTypeDiscover || !isPXE(f) {
		return
	}
	s.emit(Event{Kind: EventDiscover, MAC: f.MAC, Relay: f.Relay})
	p := s.plan(ctx, f)
	r := newReply(req, dhcpv4.MessageTypeOffer, j.link.local)
	if !addBoot(r, req, f, p, j.link.local, true) {
		return // unknown or refused: a proxy stays silent
	}
	s.send(j, r, replyAddr(req, false))
	s.emit(Event{Kind: EventOffer, MAC: f.MAC, Host: p.Host, Relay: f.Relay, BootFile: p.BootFile})
}

// bootServer answers the PXE boot-server request on port 4011, which a
// client sends unicast once it has its address from the other server.
func (s *Server) bootServer(ctx context.Context, j job, req *dhcpv4.DHCPv4, f boot.Facts) {
	mt := req.MessageType()
	if (mt != dhcpv4.MessageTypeRequest && mt != dhcpv4.MessageTypeInform) || !isPXE(f) {
		return
	}
	s.emit(Event{Kind: EventRequest, MAC: f.MAC, IP: f.ClientIP, Relay: f.Relay})
	p := s.plan(ctx, f)
	r := newReply(req, dhcpv4.MessageTypeAck, j.link.local)
	if ci, ok := addr4(req.ClientIPAddr); ok {
		r.ClientIPAddr = ci.AsSlice()
	}
	if !addBoot(r, req, f, p, j.link.local, true) {
		return
	}
	dst := netip.AddrPortFrom(j.src.Addr().Unmap(), j.src.Port())
	if !dst.Addr().IsValid() || dst.Addr().IsUnspecified() {
		dst = replyAddr(req, false)
	}
	s.send(j, r, dst)
	s.emit(Event{Kind: EventAck, MAC: f.MAC, IP: f.ClientIP, Host: p.Host, Relay: f.Relay, BootFile: p.BootFile})
}
