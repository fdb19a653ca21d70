package dhcp6

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/kickstand/kickstand/internal/dhcpengine"
)

// allServers is All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1), where
// clients on the link send everything until they are told otherwise.
var allServers = [16]byte{0xff, 0x02, 15: 0x02, 13: 0x01}

// listenUDP opens [::]:port bound to one interface and joined to
// ff02::1:2 there; SO_REUSEADDR (set by ListenUDP) lets one socket per
// interface share the port.
func listenUDP(ctx context.Context, ifname string, ifindex, port int) (*linkConn, error) {
	c, err := dhcpengine.ListenUDP(ctx, "udp6", ifname, port, func(fd int) error {
		mreq := &syscall.IPv6Mreq{Multiaddr: allServers, Interface: uint32(ifindex)}
		if err := syscall.SetsockoptIPv6Mreq(fd, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, mreq); err != nil {
			return fmt.Errorf("join ff02::1:2 on %s: %w", ifname, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	raw, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, err
	}
	return &linkConn{UDPConn: c, raw: raw, index: ifindex}, nil
}

// linkConn is a socket bound to one interface. A reply to a link-local
// address (every client on the link) names the interface by its index,
// handed to the kernel as is: through the net package, a zone is an
// interface name, and each send of one given by index re-read the whole
// interface table over netlink (18 % of serve's CPU at 2,000 Replies/s),
// while a name is looked up in the namespace of whichever thread runs the
// lookup, not necessarily the socket's.
type linkConn struct {
	*net.UDPConn
	raw   syscall.RawConn
	index int
}

func (c *linkConn) WriteToUDPAddrPort(b []byte, dst netip.AddrPort) (int, error) {
	if dst.Addr().Zone() == "" {
		return c.UDPConn.WriteToUDPAddrPort(b, dst)
	}
	sa := &syscall.SockaddrInet6{Port: int(dst.Port()), ZoneId: uint32(c.index), Addr: dst.Addr().As16()}
	var serr error
	err := c.raw.Write(func(fd uintptr) bool {
		serr = syscall.Sendto(int(fd), b, 0, sa)
		return serr != syscall.EAGAIN // EAGAIN: wait until writable
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return 0, &net.OpError{Op: "write", Net: "udp6", Addr: net.UDPAddrFromAddrPort(dst), Err: err}
	}
	return len(b), nil
}
