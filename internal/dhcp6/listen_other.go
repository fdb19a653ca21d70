//go:build !linux

package dhcp6

import (
	"context"
	"errors"
	"net"
)

func listenUDP(context.Context, string, int, int) (*net.UDPConn, error) {
	return nil, errors.New("the DHCPv6 server needs Linux (SO_BINDTODEVICE)")
}
