//go:build !linux

package tftp

import (
	"errors"
	"net"
	"net/netip"
)

// Elsewhere the server answers from the listener's own address, which is
// right unless a wildcard listener runs on a multi-homed host.

func oobSpace() int { return 0 }

func enableDstInfo(*net.UDPConn) error { return errors.ErrUnsupported }

func parseDst([]byte) netip.Addr { return netip.Addr{} }

func srcOOB(netip.Addr, bool) []byte { return nil }
