package tftp

import "io"

// netasciiReader encodes a byte stream as netascii (RFC 764 via RFC 1350):
// LF becomes CR LF and a bare CR becomes CR NUL. Files are stored with Unix
// line ends, so this is what a client asking for netascii expects.
type netasciiReader struct {
	r       io.ByteReader
	pending int // byte still owed after a CR, or -1
}

func newNetasciiReader(r io.ByteReader) *netasciiReader {
	return &netasciiReader{r: r, pending: -1}
}

func (n *netasciiReader) Read(p []byte) (int, error) {
	i := 0
	for i < len(p) {
		if n.pending >= 0 {
			p[i] = byte(n.pending)
			n.pending = -1
			i++
			continue
		}
		c, err := n.r.ReadByte()
		if err != nil {
			return i, err
		}
		switch c {
		case '\n':
			p[i], n.pending = '\r', '\n'
		case '\r':
			p[i], n.pending = '\r', 0
		default:
			p[i] = c
		}
		i++
	}
	return i, nil
}
