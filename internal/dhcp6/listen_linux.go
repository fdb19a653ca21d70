package dhcp6

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// allServers is All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1), where
// clients on the link send everything until they are told otherwise.
var allServers = [16]byte{0xff, 0x02, 15: 0x02, 13: 0x01}

// listenUDP opens [::]:port bound to one interface and joined to
// ff02::1:2 there. SO_BINDTODEVICE keeps kickstand off every interface the
// config does not name and tells which link a multicast came in on;
// SO_REUSEADDR lets one socket per interface share the port.
func listenUDP(ctx context.Context, ifname string, ifindex, port int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ifname); serr != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, serr)
				return
			}
			if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); serr != nil {
				return
			}
			mreq := &syscall.IPv6Mreq{Multiaddr: allServers, Interface: uint32(ifindex)}
			if serr = syscall.SetsockoptIPv6Mreq(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, mreq); serr != nil {
				serr = fmt.Errorf("join ff02::1:2 on %s: %w", ifname, serr)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp6", "[::]:"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	// Boot storms arrive in bursts: a bigger buffer rides them out.
	_ = c.SetReadBuffer(4 << 20)
	return c, nil
}
