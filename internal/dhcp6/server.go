package dhcp6

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Server is the DHCPv6 server on the shared engine. Config is read per
// packet, so subnets, options and reservations follow a reload; the
// interfaces and the worker count are fixed when Serve starts.
type Server struct {
	*dhcpengine.Base[subnet]
	// serverID is the server's DUID, set by Serve (tests set it).
	serverID dhcpv6.DUID
}

// New checks the options. It opens nothing: Serve does.
func New(o dhcpengine.Options) (*Server, error) {
	b, err := dhcpengine.NewBase(6, o, func(c *inventory.Config) []subnet { return parseSubnets(&c.DHCP6) })
	return &Server{Base: b}, err
}

// link is one interface kickstand serves on.
type link struct {
	name  string
	index int
	hw    net.HardwareAddr
	local netip.Addr     // its first global IPv6 address: the boot server address
	nets  []netip.Prefix // its global IPv6 networks, to find a client's subnet
}

// Serve runs the server until ctx is done (dhcpengine.Engine.Serve).
func (s *Server) Serve(ctx context.Context) error {
	d := s.Config().DHCP6
	return s.Base.Serve(ctx, s, d.Enabled && len(d.Interfaces) > 0, func() ([]*dhcpengine.Socket, error) { return s.open(ctx, d) },
		d.Workers, d.RateLimit)
}

// open opens [::]:547 on each interface and names the server.
func (s *Server) open(ctx context.Context, d inventory.DHCP6) ([]*dhcpengine.Socket, error) {
	var socks []*dhcpengine.Socket
	var links []*link
	for _, name := range d.Interfaces {
		ifi, nets, err := dhcpengine.Interface(name, 6, "DHCPv6 needs a global one to find its clients' subnet and to name itself in boot URLs")
		if err != nil {
			return socks, err
		}
		l := &link{name: name, index: ifi.Index, hw: ifi.HardwareAddr, local: nets[0].Addr(), nets: nets}
		c, err := listenUDP(ctx, name, l.index, serverPort)
		if err != nil {
			return socks, fmt.Errorf("listen on %s port %d: %w", name, serverPort, err)
		}
		socks = append(socks, &dhcpengine.Socket{Conn: c, Port: serverPort, Link: l})
		links = append(links, l)
	}
	if s.serverID == nil {
		s.serverID = serverDUID(links)
	}
	for _, l := range links {
		s.Log().Info("DHCPv6 listening", "interface", l.name, "address", l.local, "server_duid", hex.EncodeToString(s.serverID.ToBytes()))
	}
	return socks, nil
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

// Ports (RFC 8415 7.2).
const (
	clientPort = 546
	serverPort = 547
)

// request is one client message being answered.
type request struct {
	p      *dhcpengine.Packet
	link   *link
	msg    *dhcpv6.Message
	relays []*dhcpv6.RelayMessage // outermost first
	f      boot.Facts
	sub    *subnet
	host   string
	resv   netip.Addr // the host's reserved address in this subnet
	duid   string     // hex
}

// Peek reads the client's DUID (and the MAC or UUID inside it) from a
// Solicit, Request, Renew or Rebind, relayed or not, without parsing the
// packet: those are the messages that take addresses from the pool.
func (s *Server) Peek(p *dhcpengine.Packet) (string, boot.Keys, bool) {
	duid, ok := peekClientID(p.Data, 0)
	if !ok {
		return "", boot.Keys{}, false
	}
	k := boot.Keys{DUID: duid}
	if d, err := dhcpv6.DUIDFromBytes(duid); err == nil {
		k.MAC = duidMAC(d)
		if u, ok := d.(*dhcpv6.DUIDUUID); ok {
			k.UUID = dhcpengine.EFIGUID(u.UUID[:])
		}
	}
	return hex.EncodeToString(duid), k, true
}

// Opens reports whether p is a Solicit, relayed or not, without parsing
// the packet.
func (s *Server) Opens(p *dhcpengine.Packet) bool {
	b := p.Data
	for hops := 0; len(b) >= 4 && hops <= maxHops; hops++ {
		switch dhcpv6.MessageType(b[0]) {
		case dhcpv6.MessageTypeSolicit:
			return true
		case dhcpv6.MessageTypeRelayForward:
			if b = relayMsg(b); b == nil {
				return false
			}
		default:
			return false
		}
	}
	return false
}

// relayMsg is the Relay Message option of a relay-forward, nil if none.
func relayMsg(b []byte) []byte {
	if len(b) < 34 {
		return nil
	}
	return option(b[34:], dhcpv6.OptionRelayMsg)
}

// option finds an option in a list of them, nil if it is absent or the
// list is malformed.
func option(opts []byte, want dhcpv6.OptionCode) []byte {
	for len(opts) >= 4 {
		code, n := binary.BigEndian.Uint16(opts), int(binary.BigEndian.Uint16(opts[2:]))
		if len(opts) < 4+n {
			return nil
		}
		if dhcpv6.OptionCode(code) == want {
			return opts[4 : 4+n]
		}
		opts = opts[4+n:]
	}
	return nil
}

// peekClientID finds the Client Identifier option of an allocating client
// message, inside relay-forwards if need be.
func peekClientID(b []byte, hops int) ([]byte, bool) {
	if len(b) < 4 || hops > maxHops {
		return nil, false
	}
	switch dhcpv6.MessageType(b[0]) {
	case dhcpv6.MessageTypeSolicit, dhcpv6.MessageTypeRequest, dhcpv6.MessageTypeRenew, dhcpv6.MessageTypeRebind:
		v := option(b[4:], dhcpv6.OptionClientID)
		return v, len(v) > 0
	case dhcpv6.MessageTypeRelayForward:
		if inner := relayMsg(b); inner != nil {
			return peekClientID(inner, hops+1)
		}
	}
	return nil, false
}

// Handle answers one packet (dhcpengine.Handler).
func (s *Server) Handle(ctx context.Context, p *dhcpengine.Packet) {
	pkt, err := dhcpv6.FromBytes(p.Data)
	if err != nil {
		s.Malformed()
		return
	}
	msg, relays, err := unwrap(pkt)
	if err != nil {
		s.Malformed()
		return
	}
	l := p.Socket.Link.(*link)
	r := &request{p: p, link: l, msg: msg, relays: relays, f: parseFacts(pkt, l.local, p.Src.Addr())}
	if cid := msg.Options.ClientID(); cid != nil {
		r.duid = hex.EncodeToString(cid.ToBytes())
	}
	if !s.forUs(r) {
		s.Ignored()
		return
	}
	r.sub = selectSubnet(s.Subnets(), len(relays) > 0, r.f.Relay, l.nets)
	if err := s.identify(ctx, r); err != nil {
		// Without knowing the reservation a pool address could go to a
		// reserved host: stay silent, the client retries.
		s.Log().Warn("host lookup failed: no reply", "duid", r.duid, "err", err)
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

// identify finds the client's host, as the boot decision will (by UUID,
// MAC or reserved DUID: the facts go to it as the packet gave them), and
// its reservation in the subnet.
func (s *Server) identify(ctx context.Context, r *request) error {
	h, err := s.Reservation(ctx, boot.Keys{DUID: r.f.DUID, UUID: r.f.UUID, MAC: r.f.MAC})
	if err != nil || h == nil {
		return err
	}
	r.host = h.Name
	if a, ok := h.Addr6(); ok && a.Addr().Is6() && r.sub != nil && r.sub.Prefix.Contains(a.Addr()) {
		r.resv = a.Addr()
	}
	return nil
}

// send wraps the reply for the relays it came through and sends it: to
// the client's port 546, or the relay's 547 (its own source port when it
// sent the Relay Source Port option, RFC 8357).
func (s *Server) send(r *request, reply *dhcpv6.Message) {
	src := r.p.Src.Addr() // its zone, if link-local: the socket sends by its interface index (linkConn)
	dst := netip.AddrPortFrom(src, clientPort)
	var out dhcpv6.DHCPv6 = reply
	if len(r.relays) > 0 {
		out = wrapRelays(reply, r.relays)
		dst = netip.AddrPortFrom(src, serverPort)
		if r.relays[0].Options.GetOne(dhcpv6.OptionRelayPort) != nil {
			dst = netip.AddrPortFrom(src, r.p.Src.Port())
		}
	}
	s.Send(r.p, out.ToBytes(), dst)
}

func (s *Server) event(r *request, kind dhcpengine.EventKind) dhcpengine.Event {
	return dhcpengine.Event{Kind: kind, MAC: r.f.MAC, DUID: r.duid, Host: r.host, Relay: r.f.Relay}
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
	kinds := map[dhcpv6.MessageType]dhcpengine.EventKind{dhcpv6.MessageTypeSolicit: dhcpengine.EventSolicit, dhcpv6.MessageTypeRequest: dhcpengine.EventRequest,
		dhcpv6.MessageTypeRenew: dhcpengine.EventRenew, dhcpv6.MessageTypeRebind: dhcpengine.EventRebind}
	ev := s.event(r, kinds[m.MessageType])
	s.Emit(ev)
	if r.sub == nil {
		s.Ignored() // no configured subnet for this client
		return
	}
	rapid := m.MessageType == dhcpv6.MessageTypeSolicit && m.GetOneOption(dhcpv6.OptionRapidCommit) != nil
	advertise := m.MessageType == dhcpv6.MessageTypeSolicit && !rapid
	now := time.Now()
	ias := m.Options.IANA()
	var ops []store.LeaseOp
	var opIA []int // ops[i] is for ias[opIA[i]]
	for i, ia := range ias {
		op := store.LeaseOp{Kind: store.LeaseBind, ClientID: r.duid, IAID: iaid(ia), MAC: r.f.MAC, Host: r.host,
			PoolFirst: r.sub.First, PoolLast: r.sub.Last, Now: now, Until: now.Add(r.sub.valid)}
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
	// The boot decision does not depend on the lease: made here, on the
	// worker, while the commit runs.
	p := s.Plan(ctx, r.f)
	finish := func(res []store.LeaseResult, err error) {
		if err != nil {
			if !errors.Is(err, context.Canceled) && !errors.Is(err, dhcpengine.ErrRefused) { // canceled: shutting down
				s.Log().Warn("lease commit failed: no reply", "duid", r.duid, "err", err)
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
				if !advertise {
					s.Log().Info("no address for IA", "duid", r.duid, "iaid", ias[i].IaId, "err", lr.Err)
				}
				ev.Reason = lr.Err.Error()
				continue
			}
			results[i].addr = lr.Lease.Addr
			// A lease answered from memory while the store is down keeps
			// the expiry it was committed with.
			if left := lr.Lease.Expires.Sub(now); !advertise && left > 0 && left < r.sub.valid-time.Second {
				results[i].left = left.Truncate(time.Second)
			}
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
			return // nothing to advertise
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
		ev.Kind = dhcpengine.EventReply
		if advertise {
			ev.Kind = dhcpengine.EventAdvertise
		}
		for _, ia := range results {
			if ia.addr.IsValid() {
				ev.IP = ia.addr
				if !advertise {
					ev.Binding = dhcpengine.Committed
				}
				break
			}
		}
		s.Emit(ev)
	}
	switch {
	case len(ops) == 0:
		finish(nil, nil)
	case advertise:
		// An Advertise promises nothing: chosen in memory, written
		// nowhere.
		res := make([]store.LeaseResult, len(ops))
		for k := range ops {
			var err error
			if res[k], err = s.Offer(ctx, ops[k]); err != nil {
				if !errors.Is(err, dhcpengine.ErrRefused) {
					s.Log().Warn("no advertise", "duid", r.duid, "err", err)
				}
				return
			}
		}
		finish(res, nil)
	default:
		s.Assign(ctx, r.p, ops, finish)
	}
}

// giveBack answers Release and Decline: each named address is given back
// (for its holder only), durably, then a Reply with Success goes out.
// A declined address is quarantined: another machine answers for it.
func (s *Server) giveBack(ctx context.Context, r *request) {
	m := r.msg
	kind, evKind := store.LeaseRelease, dhcpengine.EventRelease
	if m.MessageType == dhcpv6.MessageTypeDecline {
		kind, evKind = store.LeaseDecline, dhcpengine.EventDecline
	}
	now := time.Now()
	var ops []store.LeaseOp
	for _, ia := range m.Options.IANA() {
		for _, a := range held(ia) {
			ops = append(ops, store.LeaseOp{Kind: kind, ClientID: r.duid, IAID: iaid(ia), MAC: r.f.MAC, Host: r.host,
				Addr: a, Now: now, Until: now.Add(s.DeclineHold)})
		}
	}
	reply := newReply(m, dhcpv6.MessageTypeReply, s.serverID)
	reply.AddOption(&dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess})
	if len(ops) == 0 {
		s.send(r, reply)
		return
	}
	s.Commit(ctx, r.p, ops, func(res []store.LeaseResult, err error) {
		if err != nil {
			if !errors.Is(err, dhcpengine.ErrRefused) {
				s.Log().Warn("lease commit failed: no reply", "duid", r.duid, "err", err)
			}
			return
		}
		s.send(r, reply)
		for i, lr := range res {
			ev := s.event(r, evKind)
			ev.IP = ops[i].Addr
			if lr.Err != nil {
				s.Log().Info("lease not given back", "duid", r.duid, "addr", ops[i].Addr, "err", lr.Err)
				continue
			}
			if kind == store.LeaseDecline {
				s.Log().Warn("address declined: another machine uses it; quarantined", "duid", r.duid, "addr", ops[i].Addr, "until", ops[i].Until)
			}
			s.Emit(ev)
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
	ev := s.event(r, dhcpengine.EventConfirm)
	ev.IP = addrs[0]
	s.Emit(ev)
	st := &dhcpv6.OptStatusCode{StatusCode: iana.StatusSuccess, StatusMessage: "all addresses on link"}
	for _, a := range addrs {
		if !r.sub.Prefix.Contains(a) {
			st = &dhcpv6.OptStatusCode{StatusCode: iana.StatusNotOnLink, StatusMessage: a.String() + " is not on " + r.sub.Prefix.String()}
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
	ev := s.event(r, dhcpengine.EventInfoReq)
	s.Emit(ev)
	reply := newReply(r.msg, dhcpv6.MessageTypeReply, s.serverID)
	addNetwork(reply, r.sub)
	addBoot(reply, r.f, s.Plan(ctx, r.f), r.sub)
	s.send(r, reply)
}
