package dhcpengine

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// ListenUDP opens the wildcard address's port on network ("udp4", "udp6")
// bound to one interface, with SO_REUSEADDR, and setup's further options.
// SO_BINDTODEVICE keeps kickstand off every interface the config does not
// name, and tells which interface a broadcast or multicast came in on. The
// receive buffer is enlarged (best effort, capped by rmem_max): a PXE boot
// storm arrives in bursts, and a bigger buffer rides them out instead of
// dropping in the kernel.
func ListenUDP(ctx context.Context, network, ifname string, port int, setup func(fd int) error) (*net.UDPConn, error) {
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
			if setup != nil {
				serr = setup(int(fd))
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	host := "0.0.0.0"
	if network == "udp6" {
		host = "::"
	}
	pc, err := lc.ListenPacket(ctx, network, net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	_ = c.SetReadBuffer(4 << 20)
	return c, nil
}
