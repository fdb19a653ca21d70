package dhcp4

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Server is the DHCPv4 server (full or proxyDHCP) on the shared engine.
// Config is read per packet, so subnets, options and reservations follow
// a reload; the interfaces, the mode's sockets and the worker count are
// fixed when Serve starts.
type Server struct {
	*dhcpengine.Base[subnet]
}

// New checks the options. It opens nothing: Serve does.
func New(o dhcpengine.Options) (*Server, error) {
	b, err := dhcpengine.NewBase(4, o, func(c *inventory.Config) []subnet { return parseSubnets(&c.DHCP) })
	return &Server{b}, err
}

// link is one interface kickstand serves on.
type link struct {
	name  string
	local netip.Addr     // its first IPv4 address: server identifier, siaddr
	nets  []netip.Prefix // all its IPv4 networks, to find a client's subnet
}

// Serve runs the server until ctx is done (dhcpengine.Engine.Serve).
func (s *Server) Serve(ctx context.Context) error {
	d := s.Config().DHCP
	return s.Base.Serve(ctx, s, d.Enabled, func() ([]*dhcpengine.Socket, error) { return s.open(ctx, d) }, d.Workers, d.RateLimit)
}

// open opens ports 67 and 4011 on each interface. 4011 in both modes: a
// reply that says "PXEClient" makes UEFI firmware (EDK2's BINL offer) ask
// the boot server on 4011 before it loads anything, even from a full DHCP
// server.
func (s *Server) open(ctx context.Context, d inventory.DHCP) ([]*dhcpengine.Socket, error) {
	var socks []*dhcpengine.Socket
	for _, name := range d.Interfaces {
		_, nets, err := dhcpengine.Interface(name, 4, "DHCP needs one as its server identifier")
		if err != nil {
			return socks, err
		}
		l := &link{name: name, local: nets[0].Addr(), nets: nets}
		for _, port := range []int{serverPort, pxePort} {
			c, err := listenUDP(ctx, name, port)
			if err != nil {
				return socks, fmt.Errorf("listen on %s port %d: %w", name, port, err)
			}
			socks = append(socks, &dhcpengine.Socket{Conn: c, Port: port, Link: l})
		}
		s.Log().Info("DHCPv4 listening", "interface", name, "address", l.local, "mode", d.Mode)
	}
	return socks, nil
}

// Peek reads the client's MAC from chaddr without parsing the packet.
// Only Ethernet BOOTREQUESTs to port 67 of a full server are rate
// limited: a proxy hands out no addresses.
func (s *Server) Peek(p *dhcpengine.Packet) (string, boot.Keys, bool) {
	b := p.Data
	if p.Socket.Port != serverPort || len(b) < 34 || b[0] != 1 || b[1] != 1 || b[2] != 6 {
		return "", boot.Keys{}, false
	}
	if cfg := s.Config(); cfg == nil || cfg.DHCP.Mode == "proxy" {
		return "", boot.Keys{}, false
	}
	mac := net.HardwareAddr(b[28:34]).String()
	return mac, boot.Keys{MAC: mac}, true
}

// Opens reports whether p is a DISCOVER, from its option 53, without
// parsing the packet.
func (s *Server) Opens(p *dhcpengine.Packet) bool {
	b := p.Data
	if len(b) < 240 || b[0] != 1 || b[236] != 99 || b[237] != 130 || b[238] != 83 || b[239] != 99 {
		return false
	}
	for i := 240; i < len(b); {
		switch code := b[i]; code {
		case 0: // pad
			i++
			continue
		case 255: // end
			return false
		}
		if i+1 >= len(b) || i+2+int(b[i+1]) > len(b) {
			return false
		}
		if b[i] == byte(dhcpv4.OptionDHCPMessageType) {
			return b[i+1] == 1 && b[i+2] == byte(dhcpv4.MessageTypeDiscover)
		}
		i += 2 + int(b[i+1])
	}
	return false
}

// request is one client message being answered.
type request struct {
	p    *dhcpengine.Packet
	link *link
	msg  *dhcpv4.DHCPv4
	f    boot.Facts
	sub  *subnet
	host string     // the inventory host, when the client is one
	resv netip.Addr // its reserved address in sub
	now  time.Time
	ev   dhcpengine.Event // the event the answer will be reported as
}

// Handle answers one packet (dhcpengine.Handler).
func (s *Server) Handle(ctx context.Context, p *dhcpengine.Packet) {
	msg, err := dhcpv4.FromBytes(p.Data)
	if err != nil || msg.OpCode != dhcpv4.OpcodeBootRequest {
		s.Malformed()
		return
	}
	l := p.Socket.Link.(*link)
	cfg := s.Config()
	r := &request{p: p, link: l, msg: msg, f: ParseFacts(msg, l.local), now: time.Now()}
	if r.f.MAC == "" {
		s.Ignored() // not an Ethernet client
		return
	}
	h, err := s.Reservation(ctx, boot.Keys{UUID: r.f.UUID, MAC: r.f.MAC})
	if err != nil {
		// Without knowing the reservation, a pool address could go to a
		// reserved host; stay silent and let the client retry.
		s.Log().Warn("host lookup failed: no reply", "mac", r.f.MAC, "err", err)
		return
	}
	if h != nil {
		r.host = h.Name
	}
	r.ev = dhcpengine.Event{MAC: r.f.MAC, Host: r.host, Relay: r.f.Relay}
	switch {
	case p.Socket.Port == pxePort:
		s.bootServer(ctx, r)
	case cfg.DHCP.Mode == "proxy":
		s.proxy(ctx, r)
	default:
		if r.sub = selectSubnet(s.Subnets(), r.f.Relay, l.nets); r.sub == nil {
			s.Ignored() // no configured subnet for this client
			return
		}
		if h != nil {
			if a, ok := h.Addr4(); ok && a.Addr().Is4() && r.sub.Prefix.Contains(a.Addr()) {
				r.resv = a.Addr()
			}
		}
		s.full(ctx, r)
	}
}

// full is full-server mode: addresses and boot options.
func (s *Server) full(ctx context.Context, r *request) {
	switch r.msg.MessageType() {
	case dhcpv4.MessageTypeDiscover:
		s.discover(ctx, r)
	case dhcpv4.MessageTypeRequest:
		s.request(ctx, r)
	case dhcpv4.MessageTypeRelease, dhcpv4.MessageTypeDecline:
		s.giveBack(ctx, r)
	case dhcpv4.MessageTypeInform:
		s.inform(ctx, r)
	}
}

// op is the lease op of r's client for addr.
func (r *request) op(kind store.LeaseOpKind, addr netip.Addr, until time.Time) store.LeaseOp {
	op := store.LeaseOp{Kind: kind, Addr: addr, MAC: r.f.MAC, Host: r.host, PoolFirst: r.sub.First, PoolLast: r.sub.Last,
		Now: r.now, Until: until}
	if v := r.msg.Options.Get(dhcpv4.OptionClientIdentifier); len(v) > 0 {
		op.ClientID = hex.EncodeToString(v)
	}
	return op
}

// requested is the address the client asks for (option 50).
func (r *request) requested() netip.Addr {
	a, _ := addr4(r.msg.RequestedIPAddress())
	return a
}

// discover offers an address chosen in memory: nothing is written, and a
// lost offer costs the client one retransmission.
func (s *Server) discover(ctx context.Context, r *request) {
	r.ev.Kind, r.ev.IP = dhcpengine.EventDiscover, r.requested()
	s.Emit(r.ev)
	op := r.op(store.LeaseBind, r.requested(), r.now.Add(r.sub.lease))
	if r.resv.IsValid() {
		op.Addr, op.Reserved = r.resv, true
	}
	res, err := s.Offer(ctx, op)
	if err = errors.Join(err, res.Err); err != nil {
		if !errors.Is(err, dhcpengine.ErrRefused) {
			s.Log().Warn("no offer", "mac", r.f.MAC, "err", err)
		}
		return
	}
	s.answer(r, dhcpv4.MessageTypeOffer, res.Lease, s.Plan(ctx, r.f))
	r.ev.Kind, r.ev.IP = dhcpengine.EventOffer, res.Lease.Addr
	s.Emit(r.ev)
}

// request binds the address the client asks for, durably, then ACKs; or
// NAKs an address it may not have.
func (s *Server) request(ctx context.Context, r *request) {
	if sid, ok := addr4(r.msg.ServerIdentifier()); ok && sid != r.link.local {
		return // the client chose another server's offer
	}
	want := r.requested()
	if !want.IsValid() {
		want, _ = addr4(r.msg.ClientIPAddr)
	}
	if !want.IsValid() {
		s.Ignored() // a REQUEST that names no address
		return
	}
	r.ev.Kind, r.ev.IP = dhcpengine.EventRequest, want
	s.Emit(r.ev)
	switch {
	case !r.sub.Prefix.Contains(want):
		s.nak(r, fmt.Sprintf("%s is not on this network (%s)", want, r.sub.Prefix))
		return
	case r.resv.IsValid() && want != r.resv:
		s.nak(r, fmt.Sprintf("%s is reserved %s", r.host, r.resv))
		return
	}
	op := r.op(store.LeaseBind, want, r.now.Add(r.sub.lease))
	op.Reserved = r.resv.IsValid()
	// The boot decision does not depend on the lease: made here, on the
	// worker, while the commit runs.
	p := s.Plan(ctx, r.f)
	s.Commit(ctx, r.p, []store.LeaseOp{op}, func(res []store.LeaseResult, err error) {
		switch {
		case err != nil:
			if !errors.Is(err, context.Canceled) && !errors.Is(err, dhcpengine.ErrRefused) {
				s.Log().Warn("lease commit failed: no ACK", "mac", r.f.MAC, "addr", want, "err", err)
			}
		case res[0].Err != nil:
			s.nak(r, res[0].Err.Error())
		default:
			s.answer(r, dhcpv4.MessageTypeAck, res[0].Lease, p)
			r.ev.Kind, r.ev.Binding = dhcpengine.EventAck, dhcpengine.Committed
			s.Emit(r.ev)
		}
	})
}

// answer sends an OFFER or ACK of l with p's boot options. A lease
// answered from memory while the store is down is given for the time it
// has left, never more.
func (s *Server) answer(r *request, mt dhcpv4.MessageType, l store.Lease, p boot.Plan) {
	lease := r.sub.lease
	if left := l.Expires.Sub(r.now); l.State == store.LeaseBound && left > 0 && left < lease-time.Second {
		lease = left
	}
	reply := newReply(r.msg, mt, r.link.local)
	reply.YourIPAddr = l.Addr.AsSlice()
	if ci, ok := addr4(r.msg.ClientIPAddr); ok && mt == dhcpv4.MessageTypeAck {
		reply.ClientIPAddr = ci.AsSlice()
	}
	addNetwork(reply, r.sub, r.host, lease)
	if addBoot(reply, r.msg, r.f, p, r.link.local, false) {
		r.ev.BootFile = p.BootFile
	} else if p.Refusal != "" {
		r.ev.Reason = p.Refusal // why a known host got no boot options
	}
	if r.ev.Host == "" {
		r.ev.Host = p.Host
	}
	s.send(r, reply, replyAddr(r.msg, false))
}

func (s *Server) send(r *request, reply *dhcpv4.DHCPv4, dst netip.AddrPort) {
	s.Send(r.p, reply.ToBytes(), dst)
}

func (s *Server) nak(r *request, reason string) {
	reply := newReply(r.msg, dhcpv4.MessageTypeNak, r.link.local)
	if r.f.Relay.IsValid() {
		reply.SetBroadcast() // RFC 2131 4.3.2
	}
	reply.UpdateOption(dhcpv4.OptMessage(reason))
	s.send(r, reply, replyAddr(r.msg, true))
	s.Nak()
	s.Log().Info("NAK", "mac", r.f.MAC, "addr", r.ev.IP, "reason", reason)
	r.ev.Kind, r.ev.Reason = dhcpengine.EventNak, reason
	s.Emit(r.ev)
}

// giveBack handles RELEASE and DECLINE: the address goes back (for its
// holder only), durably. A declined address is quarantined: another
// machine answers for it.
func (s *Server) giveBack(ctx context.Context, r *request) {
	op := r.op(store.LeaseRelease, netip.Addr{}, time.Time{})
	r.ev.Kind = dhcpengine.EventRelease
	op.Addr, _ = addr4(r.msg.ClientIPAddr)
	decline := r.msg.MessageType() == dhcpv4.MessageTypeDecline
	if decline {
		op.Kind, op.Addr, op.Until, r.ev.Kind = store.LeaseDecline, r.requested(), r.now.Add(s.DeclineHold), dhcpengine.EventDecline
	}
	if !op.Addr.IsValid() {
		return
	}
	r.ev.IP = op.Addr
	s.Commit(ctx, r.p, []store.LeaseOp{op}, func(res []store.LeaseResult, err error) {
		if err == nil {
			err = res[0].Err
		}
		if err != nil {
			s.Log().Info("lease not given back", "mac", r.f.MAC, "addr", op.Addr, "err", err)
			return
		}
		if decline {
			s.Log().Warn("address declined: another machine uses it; quarantined", "mac", r.f.MAC, "addr", op.Addr, "until", op.Until)
		}
		s.Emit(r.ev)
	})
}

// inform answers DHCPINFORM: configuration and boot options, no lease.
func (s *Server) inform(ctx context.Context, r *request) {
	ci, ok := addr4(r.msg.ClientIPAddr)
	if !ok {
		return
	}
	r.ev.Kind, r.ev.IP = dhcpengine.EventInform, ci
	s.Emit(r.ev)
	reply := newReply(r.msg, dhcpv4.MessageTypeAck, r.link.local)
	reply.ClientIPAddr = ci.AsSlice()
	addNetwork(reply, r.sub, r.host, 0)
	addBoot(reply, r.msg, r.f, s.Plan(ctx, r.f), r.link.local, false)
	s.send(r, reply, replyAddr(r.msg, false))
}

// proxy answers a PXE client's DISCOVER beside another DHCP server: boot
// options, no address. Everything else on port 67 is that server's; a
// REQUEST to it still tells which address the client is taking
// (option 50, or ciaddr when renewing), which is reported as observed.
func (s *Server) proxy(ctx context.Context, r *request) {
	switch r.msg.MessageType() {
	case dhcpv4.MessageTypeRequest:
		if a := r.requested(); a.IsValid() {
			r.ev.IP = a
		} else {
			r.ev.IP = r.f.ClientIP
		}
		if r.ev.IP.IsValid() {
			r.ev.Kind, r.ev.Binding = dhcpengine.EventRequest, dhcpengine.Observed
			s.Emit(r.ev)
		}
		return
	case dhcpv4.MessageTypeDiscover:
	default:
		return
	}
	if !isPXE(r.f) {
		return
	}
	r.ev.Kind = dhcpengine.EventDiscover
	s.Emit(r.ev)
	p := s.Plan(ctx, r.f)
	reply := newReply(r.msg, dhcpv4.MessageTypeOffer, r.link.local)
	if !addBoot(reply, r.msg, r.f, p, r.link.local, true) {
		return // unknown or refused: a proxy stays silent
	}
	s.send(r, reply, replyAddr(r.msg, false))
	r.ev.Kind, r.ev.BootFile = dhcpengine.EventOffer, p.BootFile
	if r.ev.Host == "" {
		r.ev.Host = p.Host
	}
	s.Emit(r.ev)
}

// bootServer answers the PXE boot-server request on port 4011, which a
// client sends unicast once it has its address from the other server: its
// ciaddr is that address, reported as observed.
func (s *Server) bootServer(ctx context.Context, r *request) {
	mt := r.msg.MessageType()
	if (mt != dhcpv4.MessageTypeRequest && mt != dhcpv4.MessageTypeInform) || !isPXE(r.f) {
		return
	}
	r.ev.Kind, r.ev.IP = dhcpengine.EventRequest, r.f.ClientIP
	if r.ev.IP.IsValid() {
		r.ev.Binding = dhcpengine.Observed
	}
	s.Emit(r.ev)
	p := s.Plan(ctx, r.f)
	reply := newReply(r.msg, dhcpv4.MessageTypeAck, r.link.local)
	if ci, ok := addr4(r.msg.ClientIPAddr); ok {
		reply.ClientIPAddr = ci.AsSlice()
	}
	if !addBoot(reply, r.msg, r.f, p, r.link.local, true) {
		return
	}
	dst := netip.AddrPortFrom(r.p.Src.Addr().Unmap(), r.p.Src.Port())
	if !dst.Addr().IsValid() || dst.Addr().IsUnspecified() {
		dst = replyAddr(r.msg, false)
	}
	s.send(r, reply, dst)
	r.ev.Kind, r.ev.BootFile = dhcpengine.EventAck, p.BootFile
	if r.ev.Host == "" {
		r.ev.Host = p.Host
	}
	s.Emit(r.ev)
}
