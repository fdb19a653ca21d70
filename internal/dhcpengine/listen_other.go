//go:build !linux

package dhcpengine

import (
	"context"
	"errors"
	"net"
)

// ListenUDP needs Linux: kickstand binds each DHCP socket to its interface
// with SO_BINDTODEVICE.
func ListenUDP(context.Context, string, string, int, func(fd int) error) (*net.UDPConn, error) {
	return nil, errors.New("the DHCP servers need Linux (SO_BINDTODEVICE)")
}
