// Package dhcpcap reads DHCP messages out of tcpdump captures, for the
// tests and benchmarks that check what went over the wire.
package dhcpcap

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv6"
)

// Captured is one DHCP message seen on the wire.
type Captured struct {
	At     time.Time
	Family int
	// Type is the message type as the library names it ("ACK",
	// "REQUEST", "REPLY", ...), XID its transaction id.
	Type string
	XID  uint32
	// Client is who the message is from or for: the MAC on DHCPv4, the
	// DUID (hex) on DHCPv6. Reply says it is a server's message.
	Client string
	Reply  bool
	// Addrs are the addresses it gives (yiaddr; the IA_NA addresses with
	// a valid lifetime).
	Addrs []netip.Addr
}

// Bound reports whether c is an answer that binds its addresses: a
// DHCPACK, or a DHCPv6 Reply with addresses.
func (c Captured) Bound() bool {
	return c.Reply && len(c.Addrs) > 0 && (c.Type == dhcpv4.MessageTypeAck.String() || c.Type == dhcpv6.MessageTypeReply.String())
}

// ReadPcap reads the DHCP messages of a tcpdump capture of an Ethernet
// interface. It knows only what tcpdump writes here: classic pcap,
// Ethernet, IPv4 or IPv6 without extension headers, UDP. A capture cut off
// mid-record (tcpdump killed) gives what is whole.
func ReadPcap(r io.Reader) ([]Captured, error) {
	var hdr [24]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder
	nano := false
	switch m := binary.LittleEndian.Uint32(hdr[:4]); m {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo, nano = binary.LittleEndian, m == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo, nano = binary.BigEndian, m == 0x4d3cb2a1
	default:
		return nil, fmt.Errorf("not a pcap file (magic %#x)", m)
	}
	if lt := bo.Uint32(hdr[20:24]); lt != 1 {
		return nil, fmt.Errorf("pcap link type %d, want Ethernet", lt)
	}
	var out []Captured
	for {
		var rec [16]byte
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil
			}
			return out, err
		}
		sec, frac, n := bo.Uint32(rec[0:4]), bo.Uint32(rec[4:8]), bo.Uint32(rec[8:12])
		if n > 1<<16 {
			return out, fmt.Errorf("pcap record of %d bytes", n)
		}
		pkt := make([]byte, n)
		if _, err := io.ReadFull(r, pkt); err != nil {
			return out, nil
		}
		at := time.Unix(int64(sec), int64(frac)*1000)
		if nano {
			at = time.Unix(int64(sec), int64(frac))
		}
		family, payload, ok := udpPayload(pkt)
		if !ok {
			continue
		}
		if c, ok := parseDHCP(family, payload); ok {
			c.At = at
			out = append(out, c)
		}
	}
}

func udpPayload(eth []byte) (int, []byte, bool) {
	if len(eth) < 14 {
		return 0, nil, false
	}
	var family int
	var udp []byte
	switch ip := eth[14:]; binary.BigEndian.Uint16(eth[12:14]) {
	case 0x0800:
		ihl := int(ip[0]&0x0f) * 4
		if len(ip) < 20 || ip[0]>>4 != 4 || ip[9] != 17 || ihl < 20 || len(ip) < ihl+8 {
			return 0, nil, false
		}
		family, udp = 4, ip[ihl:]
	case 0x86dd:
		if len(ip) < 40+8 || ip[6] != 17 {
			return 0, nil, false
		}
		family, udp = 6, ip[40:]
	default:
		return 0, nil, false
	}
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return 0, nil, false
	}
	return family, udp[8:ulen], true
}

func parseDHCP(family int, b []byte) (Captured, bool) {
	c := Captured{Family: family}
	if family == 4 {
		p, err := dhcpv4.FromBytes(b)
		if err != nil {
			return c, false
		}
		c.Type, c.XID, c.Client = p.MessageType().String(), binary.BigEndian.Uint32(p.TransactionID[:]), p.ClientHWAddr.String()
		c.Reply = p.OpCode == dhcpv4.OpcodeBootReply
		if a, ok := netip.AddrFromSlice(p.YourIPAddr.To4()); ok && !a.IsUnspecified() {
			c.Addrs = append(c.Addrs, a)
		}
		return c, true
	}
	p, err := dhcpv6.FromBytes(b)
	if err != nil {
		return c, false
	}
	m, err := p.GetInnerMessage()
	if err != nil {
		return c, false
	}
	c.Type, c.XID = m.MessageType.String(), uint32(m.TransactionID[0])<<16|uint32(m.TransactionID[1])<<8|uint32(m.TransactionID[2])
	switch m.MessageType {
	case dhcpv6.MessageTypeAdvertise, dhcpv6.MessageTypeReply:
		c.Reply = true
	}
	if cid := m.Options.ClientID(); cid != nil {
		c.Client = hex.EncodeToString(cid.ToBytes())
	}
	for _, ia := range m.Options.IANA() {
		for _, a := range ia.Options.Addresses() {
			if addr, ok := netip.AddrFromSlice(a.IPv6Addr); ok && a.ValidLifetime > 0 {
				c.Addrs = append(c.Addrs, addr)
			}
		}
	}
	return c, true
}

// Latencies are the times from each client REQUEST (DHCPv4 or DHCPv6) to
// the first answer that binds it (ACK, Reply), matched by transaction id,
// in capture order. A REQUEST retransmitted counts from its first copy;
// one never answered is left out.
func Latencies(msgs []Captured) []time.Duration {
	type key struct {
		family int
		xid    uint32
	}
	sent := map[key]time.Time{}
	var out []time.Duration
	for _, m := range msgs {
		k := key{m.Family, m.XID}
		switch {
		case !m.Reply && (m.Type == dhcpv4.MessageTypeRequest.String() || m.Type == dhcpv6.MessageTypeRequest.String()):
			if _, ok := sent[k]; !ok {
				sent[k] = m.At
			}
		case m.Bound():
			if at, ok := sent[k]; ok {
				out = append(out, m.At.Sub(at))
				delete(sent, k)
			}
		}
	}
	return out
}
