package dhcp4

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"syscall"
)

// listenUDP opens 0.0.0.0:port bound to one interface. SO_BINDTODEVICE
// keeps kickstand off every interface the config does not name, and tells
// which interface a broadcast came in on; SO_BROADCAST lets it answer
// clients that have no address yet.
func listenUDP(ctx context.Context, ifname string, port int) (*net.UDPConn, error) {
	lc := net.ListenConfig{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, ifname); serr != nil {
				serr = fmt.Errorf("SO_BINDTODEVICE %s: %w", ifname, serr)
				return
			}
			for _, o := range []int{syscall.SO_BROADCAST, syscall.SO_REUSEADDR} {
				if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, o, 1); serr != nil {
					return
				}
			}
		})
		if err != nil {
			return err
		}
		return serr
	}}
	pc, err := lc.ListenPacket(ctx, "udp4", ":"+strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	c := pc.(*net.UDPConn)
	// A PXE boot storm arrives in bursts; a bigger buffer rides them out
	// instead of dropping in the kernel. Best effort: capped by rmem_max.
	_ = c.SetReadBuffer(4 << 20)
	return c, nil
}
