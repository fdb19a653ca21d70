package dhcp4

import (
	"context"
	"net"
	"syscall"

	"github.com/kickstand/kickstand/internal/dhcpengine"
)

// listenUDP opens 0.0.0.0:port bound to one interface; SO_BROADCAST lets
// it answer clients that have no address yet.
func listenUDP(ctx context.Context, ifname string, port int) (*net.UDPConn, error) {
	return dhcpengine.ListenUDP(ctx, "udp4", ifname, port, func(fd int) error {
		return syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_BROADCAST, 1)
	})
}
