//go:build !linux

package dhcp4

import (
	"context"
	"errors"
	"net"
)

func listenUDP(context.Context, string, int) (*net.UDPConn, error) {
	return nil, errors.New("the DHCPv4 server needs Linux (SO_BINDTODEVICE)")
}
