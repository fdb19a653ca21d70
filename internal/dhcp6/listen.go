package dhcp6

import (
	"context"
	"fmt"
	"net"
	"syscall"

	"github.com/kickstand/kickstand/internal/dhcpengine"
)

// allServers is All_DHCP_Relay_Agents_and_Servers (RFC 8415 7.1), where
// clients on the link send everything until they are told otherwise.
var allServers = [16]byte{0xff, 0x02, 15: 0x02, 13: 0x01}

// listenUDP opens [::]:port bound to one interface and joined to
// ff02::1:2 there; SO_REUSEADDR (set by ListenUDP) lets one socket per
// interface share the port.
func listenUDP(ctx context.Context, ifname string, ifindex, port int) (*net.UDPConn, error) {
	return dhcpengine.ListenUDP(ctx, "udp6", ifname, port, func(fd int) error {
		mreq := &syscall.IPv6Mreq{Multiaddr: allServers, Interface: uint32(ifindex)}
		if err := syscall.SetsockoptIPv6Mreq(fd, syscall.IPPROTO_IPV6, syscall.IPV6_JOIN_GROUP, mreq); err != nil {
			return fmt.Errorf("join ff02::1:2 on %s: %w", ifname, err)
		}
		return nil
	})
}
