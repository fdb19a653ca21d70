//go:build !linux

package tftp

import "net"

type batchSender struct{ c *net.UDPConn }

func newBatchSender(c *net.UDPConn) *batchSender { return &batchSender{c: c} }

func (b *batchSender) send(pkts [][]byte) error {
	for _, p := range pkts {
		if _, err := b.c.Write(p); err != nil {
			return err
		}
	}
	return nil
}
