//go:build linux

package tftp

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// oobSpace fits one IPv4 and one IPv6 packet-info control message.
func oobSpace() int {
	return syscall.CmsgSpace(syscall.SizeofInet4Pktinfo) + syscall.CmsgSpace(syscall.SizeofInet6Pktinfo)
}

// enableDstInfo asks the kernel to report each datagram's destination address
// (IP_PKTINFO / IPV6_RECVPKTINFO). On a multi-homed server a wildcard
// listener cannot otherwise tell which address a client used, and a reply
// from another address is dropped by the client as an unknown TID.
func enableDstInfo(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var e4, e6 error
	cerr := rc.Control(func(fd uintptr) {
		e4 = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, syscall.IP_PKTINFO, 1)
		e6 = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_RECVPKTINFO, 1)
	})
	if cerr != nil {
		return cerr
	}
	if e4 != nil && e6 != nil { // each fails on the other family's sockets
		return errors.Join(e4, e6)
	}
	return nil
}

// parseDst returns the destination address of a datagram from its control
// messages, with the interface index as zone for link-local IPv6 addresses.
func parseDst(oob []byte) netip.Addr {
	msgs, err := syscall.ParseSocketControlMessage(oob)
	if err != nil {
		return netip.Addr{}
	}
	var v4, v6 netip.Addr
	for _, m := range msgs {
		switch {
		case m.Header.Level == syscall.IPPROTO_IP && m.Header.Type == syscall.IP_PKTINFO && len(m.Data) >= syscall.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }
			dst := netip.AddrFrom4([4]byte(m.Data[8:12]))
			if !dst.IsGlobalUnicast() && !dst.IsLoopback() && !dst.IsLinkLocalUnicast() {
				// Sent to a broadcast or multicast address: answer from the
				// address routing picks, which the kernel puts in spec_dst.
				dst = netip.AddrFrom4([4]byte(m.Data[4:8]))
			}
			v4 = dst
		case m.Header.Level == syscall.IPPROTO_IPV6 && m.Header.Type == syscall.IPV6_PKTINFO && len(m.Data) >= syscall.SizeofInet6Pktinfo:
			// struct in6_pktinfo { in6_addr addr; unsigned ifindex; }
			dst := netip.AddrFrom16([16]byte(m.Data[:16]))
			if dst.Is6() && !dst.Is4In6() && (dst.IsLinkLocalUnicast() || dst.IsLinkLocalMulticast()) {
				dst = dst.WithZone(strconv.FormatUint(uint64(binary.NativeEndian.Uint32(m.Data[16:20])), 10))
			}
			v6 = dst
		}
	}
	if v4.IsValid() {
		return v4
	}
	return v6.Unmap()
}

// srcOOB builds the control message that makes a datagram leave from local.
// v6 says whether the socket is an IPv6 one (which needs IPV6_PKTINFO even
// for IPv4-mapped peers).
func srcOOB(local netip.Addr, v6 bool) []byte {
	if !local.IsValid() {
		return nil
	}
	if !v6 && local.Is4() {
		b := make([]byte, syscall.CmsgSpace(syscall.SizeofInet4Pktinfo))
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
		h.Level, h.Type = syscall.IPPROTO_IP, syscall.IP_PKTINFO
		h.SetLen(syscall.CmsgLen(syscall.SizeofInet4Pktinfo))
		a := local.As4()
		copy(b[syscall.CmsgLen(0)+4:], a[:]) // spec_dst
		return b
	}
	b := make([]byte, syscall.CmsgSpace(syscall.SizeofInet6Pktinfo))
	h := (*syscall.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level, h.Type = syscall.IPPROTO_IPV6, syscall.IPV6_PKTINFO
	h.SetLen(syscall.CmsgLen(syscall.SizeofInet6Pktinfo))
	a := local.As16()
	copy(b[syscall.CmsgLen(0):], a[:])
	return b
}
