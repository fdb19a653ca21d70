package tftp

import (
	"net"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// batchSender sends a window's packets with sendmmsg(2), one system call
// for the window instead of one per block. The transfer's socket is
// connected, so the messages carry no address.
type batchSender struct {
	rc   syscall.RawConn
	msgs []mmsghdr
	iovs []unix.Iovec
}

// mmsghdr is struct mmsghdr, which x/sys/unix does not define.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

func newBatchSender(c *net.UDPConn) *batchSender {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil
	}
	return &batchSender{rc: rc}
}

// send sends every packet, in order.
func (b *batchSender) send(pkts [][]byte) error {
	for len(pkts) > 0 {
		b.msgs, b.iovs = b.msgs[:0], b.iovs[:0]
		for _, p := range pkts {
			b.iovs = append(b.iovs, unix.Iovec{Base: &p[0]})
			b.iovs[len(b.iovs)-1].SetLen(len(p))
		}
		for i := range pkts {
			var m mmsghdr
			m.hdr.Iov = &b.iovs[i]
			m.hdr.SetIovlen(1)
			b.msgs = append(b.msgs, m)
		}
		var sent int
		var errno syscall.Errno
		err := b.rc.Write(func(fd uintptr) bool {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.msgs[0])), uintptr(len(b.msgs)), 0, 0, 0)
			if e == unix.EAGAIN {
				return false // wait until the socket can take more
			}
			sent, errno = int(r), e
			return true
		})
		if err != nil {
			return err
		}
		if errno != 0 {
			return errno
		}
		pkts = pkts[sent:]
	}
	return nil
}
