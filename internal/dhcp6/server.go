package dhcp6

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

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
	// subnets, options and reservations follow a reload; the interfaces
	// and the worker count are fixed when Serve starts.
	Config func() *inventory.Config
	Booter Booter
	Store  store.Store
	Log    *slog.Logger
	// OnEvent, when set, sees every exchange step. It is called from the
	// worker or the committer handling the packet and must not block.
	OnEvent func(Event)
}

// EventKind names a step of a DHCPv6 exchange.
type EventKind string

const (
	EventSolicit   EventKind = "solicit"
	EventAdvertise EventKind = "advertise"
	EventRequest   EventKind = "request"
	EventReply     EventKind = "reply" // addresses bound (Request, Renew, Rebind, Rapid Commit)
	EventRenew     EventKind = "renew"
	EventRebind    EventKind = "rebind"
	EventRelease   EventKind = "release"
	EventDecline   EventKind = "decline"
	EventConfirm   EventKind = "confirm"
	EventInform    EventKind = "information-request"
)

// Event is one step of a machine's DHCPv6 exchange, for the timeline.
type Event struct {
	Time  time.Time
	Kind  EventKind
	MAC   string // when known (DUID-LL/LLT, option 79, EUI-64)
	DUID  string // hex
	IP    netip.Addr
	Host  string     // the inventory host, when known
	Relay netip.Addr // the link-address of the relay nearest the client
	// BootFile is the boot file URL the client was given, if any.
	BootFile string
	// Reason says why no address was given, or why a known host got no boot options.
	Reason string
}

// Stats are the server's counters since New.
type Stats struct {
	Received  uint64 // packets read
	Dropped   uint64 // packets dropped because every worker was busy
	Malformed uint64 // packets that did not parse
	Ignored   uint64 // well-formed packets not for this server
	Replies   uint64 // Advertise and Reply messages sent
	Batches   uint64 // lease transactions committed
	LeaseOps  uint64 // lease changes in those transactions
}

// Server is the DHCPv6 server.
type Server struct {
	opt   Options
	log   *slog.Logger
	view  atomic.Pointer[view]
	ready chan struct{}
	// serverID is the server's DUID, set by Serve (tests set it).
	serverID dhcpv6.DUID

	// Tunables; tests shorten them.
	offerHold    time.Duration // how long an Advertise holds its address
	declineHold  time.Duration // how long a declined address is quarantined
	commitWindow time.Duration
	commitMax    int
	commitQueue  int

	received, dropped, malformed, ignored, replies atomic.Uint64
	commit                                         atomic.Pointer[committer]
	hosts                                          atomic.Pointer[hostIndex]
	hostsMu                                        sync.Mutex
}

type view struct {
	cfg     *inventory.Config
	subnets []subnet
}

// New checks the options. It opens nothing: Serve does.
func New(o Options) (*Server, error) {
	if o.Config == nil || o.Booter == nil || o.Store == nil {
		return nil, errors.New("dhcp6: Config, Booter and Store are required")
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Server{
		opt: o, log: o.Log.With("proto", "dhcp6"), ready: make(chan struct{}),
		offerHold: 30 * time.Second, declineHold: 10 * time.Minute,
		commitWindow: time.Millisecond, commitMax: 512, commitQueue: 4096,
	}, nil
}

// Ready is closed once Serve has opened its sockets (or found DHCPv6
// disabled).
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Stats returns the counters.
func (s *Server) Stats() Stats {
	st := Stats{Received: s.received.Load(), Dropped: s.dropped.Load(), Malformed: s.malformed.Load(),
		Ignored: s.ignored.Load(), Replies: s.replies.Load()}
	if c := s.commit.Load(); c != nil {
		st.Batches, st.LeaseOps = c.batches.Load(), c.ops.Load()
	}
	return st
}

func (s *Server) current() *view {
	cfg := s.opt.Config()
	if v := s.view.Load(); v != nil && v.cfg == cfg {
		return v
	}
	v := &view{cfg: cfg, subnets: parseSubnets(&cfg.DHCP6)}
	s.view.Store(v)
	return v
}

// link is one interface kickstand serves on.
type link struct {
	name  string
	index int
	hw    net.HardwareAddr
	local netip.Addr     // its first global IPv6 address: the boot server address
	nets  []netip.Prefix // its global IPv6 networks, to find a client's subnet
}

// replier sends replies; a *net.UDPConn, or a recorder in tests.
type replier interface {
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
}

type job struct {
	link *link
	conn replier
	data []byte
	src  netip.AddrPort
	// pending, when set, counts lease commits still to finish (tests).
	pending *sync.WaitGroup
}

// Serve runs the server until ctx is done. With DHCPv6 disabled it only
// waits. The sockets are opened on the calling goroutine, so a caller may
// run Serve on a thread inside another network namespace.
func (s *Server) Serve(ctx context.Context) error {
	cfg := s.opt.Config()
	if cfg == nil || !cfg.DHCP6.Enabled || len(cfg.DHCP6.Interfaces) == 0 {
		s.log.Info("DHCPv6 disabled")
		close(s.ready)
		<-ctx.Done()
		return nil
	}
	d := cfg.DHCP6
	var conns []*net.UDPConn
	closeAll := func() {
		for _, c := range conns {
			c.Close()
		}
	}
	var links []*link
	for _, name := range d.Interfaces {
		l, err := openLink(name)
		if err != nil {
			closeAll()
			return fmt.Errorf("dhcp6: %w", err)
		}
		c, err := listenUDP(ctx, name, l.index, serverPort)
		if err != nil {
			closeAll()
			return fmt.Errorf("dhcp6: listen on %s port %d: %w", name, serverPort, err)
		}
		conns = append(conns, c)
		links = append(links, l)
	}
	if s.serverID == nil {
		s.serverID = serverDUID(links)
	}
	for _, l := range links {
		s.log.Info("DHCPv6 listening", "interface", l.name, "address", l.local, "server_duid", hex.EncodeToString(s.serverID.ToBytes()))
	}

	workers := max(d.Workers, 1)
	queue := make(chan job, workers*16)
	commitCtx, stopCommit := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCommit()
	c := newCommitter(s.opt.Store, s.commitWindow, s.commitMax, s.commitQueue)
	s.commit.Store(c)
	var cwg sync.WaitGroup
	cwg.Add(1)
	go func() { defer cwg.Done(); c.run(commitCtx) }()

	var rwg, wwg sync.WaitGroup
	for i, l := range links {
		rwg.Add(1)
		go func() { defer rwg.Done(); s.read(l, conns[i], queue) }()
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
	closeAll()
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
	l := &link{name: name, index: ifi.Index, hw: ifi.HardwareAddr}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		ones, _ := n.Mask.Size()
		if !ok || !ip.Is6() || ip.Is4In6() || !ip.IsGlobalUnicast() {
			continue
		}
		l.nets = append(l.nets, netip.PrefixFrom(ip, ones))
		if !l.local.IsValid() {
			l.local = ip
		}
	}
	if !l.local.IsValid() {
		return nil, fmt.Errorf("interface %s has no global IPv6 address: DHCPv6 needs one to find its clients' subnet and to name itself in boot URLs", name)
	}
	return l, nil
}

// serverDUID is the server's identifier: DUID-LL of the first configured
// interface with an Ethernet address, so it survives restarts (clients
// send it back in Request, Renew, Release and Decline). Without one, a
// DUID-UUID derived from the host and interface names, stable too.
func serverDUID(links []*link) dhcpv6.DUID {
	for _, l := range links {
		if len(l.hw) == 6 {
			return &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: l.hw}
		}
	}
	h := sha256.New()
	host, _ := os.Hostname()
	h.Write([]byte("kickstand dhcp6 " + host))
	for _, l := range links {
		h.Write([]byte(" " + l.name))
	}
	var u dhcpv6.DUIDUUID
	copy(u.UUID[:], h.Sum(nil))
	return &u
}

// read feeds one socket's packets to the worker queue; when the queue is
// full the packet is dropped and counted (the client retransmits).
func (s *Server) read(l *link, conn *net.UDPConn, queue chan<- job) {
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
		select {
		case queue <- job{link: l, conn: conn, data: buf[:n], src: src}:
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

// Ports (RFC 8415 7.2).
const (
	clientPort = 546
	serverPort = 547
)

// request is one client message being answered.
type request struct {
	j      job
	msg    *dhcpv6.Message
	relays []*dhcpv6.RelayMessage // outermost first
	f      boot.Facts
	sub    *subnet
	host   string
	resv   netip.Addr // the host's reserved address in this subnet
	duid   string     // hex
	log    *slog.Logger
}

func (s *Server) handle(ctx context.Context, j job) {
	pkt, err := dhcpv6.FromBytes(j.data)
	if err != nil {
		s.malformed.Add(1)
		return
	}
	msg, relays, err := unwrap(pkt)
	if err != nil {
		s.malformed.Add(1)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	v := s.current()
	r := &request{j: j, msg: msg, relays: relays, f: parseFacts(pkt, j.link.local, j.src.Addr())}
	if cid := msg.Options.ClientID(); cid != nil {
		r.duid = hex.EncodeToString(cid.ToBytes())
	}
	r.log = s.log.With("type", msg.MessageType.String(), "xid", msg.TransactionID.String(), "duid", r.duid, "mac", r.f.MAC)
	r.log.Debug("received", "from", j.src, "relays", len(relays), "firmware", r.f.Firmware, "arch", r.f.Arch)
	if !s.forUs(r) {
		r.log.Debug("ignored: not for this server")
		s.ignored.Add(1)
		return
	}
	r.sub = selectSubnet(v.subnets, len(relays) > 0, r.f.Relay, j.link.nets)
	if err := s.identify(ctx, r); err != nil {
		// Without knowing the reservation a pool address could go to a
		// reserved host: stay silent, the client retries.
		r.log.Warn("host lookup failed: no reply", "err", err)
		return
	}
	switch msg.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		s.assign(ctx, r)
	case dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		s.giveBack(ctx, r)
	case dhcpv6.MessageTypeConfirm:
		s.confirm(r)
	case dhcpv6.MessageTypeInformationRequest:
		s.inform(ctx, r)
	}
}

// forUs applies RFC 8415 16's rules on client and server identifiers:
// messages another server must answer, or that are malformed, get no reply.
func (s *Server) forUs(r *request) bool {
	m := r.msg
	hasCID := m.Options.ClientID() != nil
	sid := m.Options.ServerID()
	ours := sid != nil && sid.Equal(s.serverID)
	switch m.MessageType {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRebind, dhcpv6.MessageTypeConfirm:
		return hasCID && sid == nil
	case dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRelease, dhcpv6.MessageTypeDecline:
		return hasCID && ours
	case dhcpv6.MessageTypeInformationRequest:
		return sid == nil || ours
	}
	return false // server messages, relay-replies, reconfigure...
}

// hostRefresh bounds how stale the in-memory host index may get; a config
// reload replaces it at once.
const hostRefresh = 5 * time.Second

// hostIndex finds inventory hosts by DUID, SMBIOS UUID and MAC without a
// store query per packet.
type hostIndex struct {
	cfg    *inventory.Config
	at     time.Time
	byDUID map[string]*hostEntry
	byUUID map[string]*hostEntry
	byMAC  map[string]*hostEntry
}

type hostEntry struct {
	name string
	v6   netip.Prefix // invalid when the host has no IPv6 address
	uuid string
	macs []string
}

func (s *Server) hostIndex(ctx context.Context) (*hostIndex, error) {
	cfg := s.opt.Config()
	fresh := func(ix *hostIndex) bool { return ix != nil && ix.cfg == cfg && time.Since(ix.at) < hostRefresh }
	ix := s.hosts.Load()
	if fresh(ix) {
		return ix, nil
	}
	if ix != nil && ix.cfg == cfg {
		if !s.hostsMu.TryLock() {
			return ix, nil // another worker refreshes; the old index serves meanwhile
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
	n := &hostIndex{cfg: cfg, at: time.Now(), byDUID: map[string]*hostEntry{}, byUUID: map[string]*hostEntry{}, byMAC: map[string]*hostEntry{}}
	byName := map[string]*hostEntry{}
	for i := range recs {
		e := &hostEntry{name: recs[i].Name, uuid: inventory.NormalUUID(recs[i].UUID)}
		if p, ok := recs[i].Addr6(); ok && p.Addr().Is6() {
			e.v6 = p
		}
		for _, m := range recs[i].MACs {
			if nm := inventory.NormalMAC(m); nm != "" {
				e.macs = append(e.macs, nm)
				n.byMAC[nm] = e
			}
		}
		if e.uuid != "" {
			n.byUUID[e.uuid] = e
		}
		byName[e.name] = e
	}
	for _, r := range cfg.DHCP6.DUIDs {
		if e, ok := byName[r.Host]; ok {
			if d := inventory.NormalDUID(r.DUID); d != "" {
				n.byDUID[d] = e
			}
		}
	}
	s.hosts.Store(n)
	return n, nil
}

// identify finds the client's host and its reservation in the subnet. A
// host found only by a reserved DUID is handed to the boot decision by its
// UUID or MAC, the keys the decision knows.
func (s *Server) identify(ctx context.Context, r *request) error {
	ix, err := s.hostIndex(ctx)
	if err != nil {
		return err
	}
	e, byDUID := ix.byDUID[r.duid], true
	if e == nil {
		byDUID = false
		if e = ix.byUUID[r.f.UUID]; e == nil || r.f.UUID == "" {
			e = ix.byMAC[r.f.MAC]
		}
	}
	if e == nil {
		return nil
	}
	r.host = e.name
	if e.v6.IsValid() && r.sub != nil && r.sub.prefix.Contains(e.v6.Addr()) {
		r.resv = e.v6.Addr()
	}
	if byDUID {
		switch {
		case e.uuid != "":
			r.f.UUID = e.uuid
		case len(e.macs) > 0 && !slices.Contains(e.macs, r.f.MAC):
			r.f.MAC = e.macs[0]
		}
	}
	return nil
}

// plan asks the boot decision. A client that does not present itself as
// network boot firmware is an operating system and gets no boot options.
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

// send wraps the reply for the relays it came through and sends it: to
// the client's port 546, or the relay's 547 (its own source port when it
// sent the Relay Source Port option, RFC 8357).
func (s *Server) send(r *request, reply *dhcpv6.Message) {
	src := r.j.src.Addr()
	if src.Zone() != "" && r.j.link.index > 0 {
		// The zone by index: the name Go gives it is looked up in the
		// reading thread's network namespace, which may not be the
		// socket's.
		src = src.WithZone(strconv.Itoa(r.j.link.index))
	}
	dst := netip.AddrPortFrom(src, clientPort)
	var out dhcpv6.DHCPv6 = reply
	if len(r.relays) > 0 {
		out = wrapRelays(reply, r.relays)
		dst = netip.AddrPortFrom(src, serverPort)
		if r.relays[0].Options.GetOne(dhcpv6.OptionRelayPort) != nil {
			dst = netip.AddrPortFrom(src, r.j.src.Port())
		}
	}
	if _, err := r.j.conn.WriteToUDPAddrPort(out.ToBytes(), dst); err != nil {
		if !errors.Is(err, net.ErrClosed) { // closed: shutting down
			r.log.Warn("send", "interface", r.j.link.name, "to", dst, "err", err)
		}
		return
	}
	s.replies.Add(1)
}

// lease hands ops to the group commit; then runs once they are durable
// (or failed). j.pending, when set, lets tests wait for that.
func (s *Server) lease(ctx context.Context, r *request, ops []store.Lease6Op, then func([]store.Lease6Result, error)) {
	if r.j.pending != nil {
		r.j.pending.Add(1)
		orig := then
		then = func(res []store.Lease6Result, err error) { defer r.j.pending.Done(); orig(res, err) }
	}
	s.commit.Load().enqueue(ctx, ops, then)
}

func (s *Server) event(r *request, kind EventKind) Event {
	return Event{Kind: kind, MAC: r.f.MAC, DUID: r.duid, Host: r.host, Relay: r.f.Relay}
}

func iaid(ia *dhcpv6.OptIANA) uint32 { return binary.BigEndian.Uint32(ia.IaId[:]) }

// held lists the addresses the client names in an IA.
func held(ia *dhcpv6.OptIANA) []netip.Addr {
	var out []netip.Addr
	for _, a := range ia.Options.Addresses() {
		if ip, ok := addr6(a.IPv6Addr); ok {
			out = append(out, ip)
		}
	}
	return out
}

// assign answers Solicit (Advertise, or Reply with Rapid Commit),
// Request, Renew and Rebind: one lease op per IA_NA, committed before the
// answer leaves. The boot decision is made meanwhile, since it does not
// depend on the lease.
func (s *Server) assign(ctx context.Context, r *request) {
	m := r.msg
	kinds := map[dhcpv6.MessageType]EventKind{dhcpv6.MessageTypeSolicit: EventSolicit, dhcpv6.MessageTypeRequest: EventRequest,
		dhcpv6.MessageTypeRenew: EventRenew, dhcpv6.MessageTypeRebind: EventRebind}
	ev := s.event(r, kinds[m.MessageType])
	s.emit(ev)
	if r.sub == nil {
		r.log.Debug("ignored: no configured subnet for this client", "relay", r.f.Relay, "interface", r.j.link.name)
		s.ignored.Add(1)
		return
	}
	rapid := m.MessageType == dhcpv6.MessageTypeSolicit && m.GetOneOption(dhcpv6.OptionRapidCommit) != nil
	advertise := m.MessageType == dhcpv6.MessageTypeSolicit && !rapid
	now := time.Now()
	kind, until := store.LeaseBind, now.Add(r.sub.valid)
	if advertise {
		kind, until = store.LeaseOffer, now.Add(s.offerHold)
	}
	ias := m.Options.IANA()
	var ops []store.Lease6Op
	var opIA []int // ops[i] is for ias[opIA[i]]
	for i, ia := range ias {
		op := store.Lease6Op{Kind: kind, DUID: r.duid, IAID: iaid(ia), MAC: r.f.MAC, Host: r.host,
			PoolFirst: r.sub.first, PoolLast: r.sub.last, Now: now, Until: until}
		if h := held(ia); len(h) > 0 {
			op.Addr = h[0]
		}
		if r.resv.IsValid() {
			// A host has one reserved address: its first IA gets it, any
			// other IA of the same client gets nothing rather than a
			// second claim on the same address.
			if i > 0 {
				continue
			}
			op.Addr, op.Reserved = r.resv, true
		}
		ops = append(ops, op)
		opIA = append(opIA, i)
	}
	p := s.plan(ctx, r.f)
	finish := func(res []store.Lease6Result, err error) {
		if err != nil {
			if !errors.Is(err, context.Canceled) { // canceled: shutting down
				r.log.Warn("lease commit failed: no reply", "err", err)
			}
			return
		}
		results := make([]iaResult, len(ias))
		assigned := 0
		for i, ia := range ias {
			results[i].iaid = ia.IaId
		}
		for k, lr := range res {
			i := opIA[k]
			if lr.Err != nil {
				r.log.Info("no address for IA", "iaid", ias[i].IaId, "err", lr.Err)
				ev.Reason = lr.Err.Error()
				continue
			}
			results[i].addr = lr.Lease.Addr
			assigned++
		}
		if !advertise {
			for i, ia := range ias {
				for _, h := range held(ia) {
					if h != results[i].addr {
						results[i].drop = append(results[i].drop, h)
					}
				}
			}
		}
		if advertise && assigned == 0 && len(ias) > 0 && p.BootFile == "" {
			r.log.Debug("no address to advertise", "reason", ev.Reason)
			return
		}
		mt := dhcpv6.MessageTypeReply
		if advertise {
			mt = dhcpv6.MessageTypeAdvertise
		}
		reply := newReply(m, mt, s.serverID)
		if rapid {
			reply.AddOption(&dhcpv6.OptionGeneric{OptionCode: dhcpv6.OptionRapidCommit})
		}
		for _, ia := range results {
			addIA(reply, ia, r.sub)
		}
		addNetwork(reply, r.sub)
		if addBoot(reply, r.f, p, r.sub) {
			ev.BootFile = p.BootFile
		} else if p.Refusal != "" {
			ev.Reason = p.Refusal // why a known host got no boot options
		}
		if ev.Host == "" {
			ev.Host = p.Host
		}
		s.send(r, reply)
		ev.Kind = EventReply
		if advertise {
			ev.Kind = EventAdvertise
		}
		for _, ia := range results {
			if ia.addr.IsValid() {
				ev.IP = ia.addr
				break
			}
		}
		s.emit(ev)
	}
	if len(ops) == 0 {
		finish(nil, nil)
		return
	}
	s.lease(ctx, r, ops, finish)
}

// giveBack answers Release and Decline: each named address is given back
// (for its holder only), durably, then a Reply with Success goes out.
// A declined address is quarantined: another machine answers for it.
func (s *Server) giveBack(ctx context.Context, r *request) {
	m := r.msg
	kind, evKind := store.LeaseRelease, EventRelease
	if m.MessageType == dhcpv6.MessageTypeDecline {
		kind, evKind = store.LeaseDecline, EventDecline
	}
	now := time.Now()
	var ops []store.Lease6Op
	for _, ia := range m.Options.IANA() {
		for _, a := range held(ia) {
			ops = append(ops, store.Lease6Op{Kind: kind, DUID: r.duid, IAID: iaid(ia), MAC: r.f.MAC, Host: r.host,
				Addr: a, Now: now, Until: now.Add(s.declineHold)})
		}
	}
	reply := newReply(m, dhcpv6.MessageTypeReply, s.serverID)
	reply.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess})
	if len(ops) == 0 {
		s.send(r, reply)
		return
	}
	s.lease(ctx, r, ops, func(res []store.Lease6Result, err error) {
		if err != nil {
			r.log.Warn("lease commit failed: no reply", "err", err)
			return
		}
		s.send(r, reply)
		for i, lr := range res {
			ev := s.event(r, evKind)
			ev.IP = ops[i].Addr
			if lr.Err != nil {
				r.log.Info("lease not given back", "addr", ops[i].Addr, "err", lr.Err)
				continue
			}
			if kind == store.LeaseDecline {
				r.log.Warn("address declined: another machine uses it; quarantined", "addr", ops[i].Addr, "until", ops[i].Until)
			}
			s.emit(ev)
		}
	})
}

// confirm answers Confirm (a client back on a link, asking whether its
// addresses still fit): NotOnLink when one is outside the client's
// subnet. With no address or no known subnet there is nothing to judge
// and no reply (RFC 8415 18.3.3).
func (s *Server) confirm(r *request) {
	var addrs []netip.Addr
	for _, ia := range r.msg.Options.IANA() {
		addrs = append(addrs, held(ia)...)
	}
	if len(addrs) == 0 || r.sub == nil {
		return
	}
	ev := s.event(r, EventConfirm)
	ev.IP = addrs[0]
	s.emit(ev)
	st := &dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "all addresses on link"}
	for _, a := range addrs {
		if !r.sub.prefix.Contains(a) {
			st = &dhcpv6.OptStatusCode{StatusCode: iana.StatusNotOnLink, StatusMessage: a.String() + " is not on " + r.sub.prefix.String()}
			break
		}
	}
	reply := newReply(r.msg, dhcpv6.MessageTypeReply, s.serverID)
	reply.AddOption(st)
	s.send(r, reply)
}

// inform answers Information-request: configuration and boot options, no
// address (iPXE and OVMF on a network whose RA has only the O flag).
func (s *Server) inform(ctx context.Context, r *request) {
	ev := s.event(r, EventInform)
	s.emit(ev)
	reply := newReply(r.msg, dhcpv6.MessageTypeReply, s.serverID)
	addNetwork(reply, r.sub)
	addBoot(reply, r.f, s.plan(ctx, r.f), r.sub)
	s.send(r, reply)
}
