package tftp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Opcodes (RFC 1350, RFC 2347).
const (
	opRRQ   uint16 = 1
	opWRQ   uint16 = 2
	opDATA  uint16 = 3
	opACK   uint16 = 4
	opERROR uint16 = 5
	opOACK  uint16 = 6
)

// Option limits from the RFCs.
const (
	minBlockSize   = 8     // RFC 2348
	maxBlockSize   = 65464 // RFC 2348
	defBlockSize   = 512   // RFC 1350
	maxTimeoutSecs = 255   // RFC 2349
	maxWindowSize  = 65535 // RFC 7440
)

// option is one name/value pair of a request, in the order the client sent it
// (the OACK keeps that order, which some firmware expects).
type option struct {
	name  string // as the client spelled it; matched case-insensitively
	value string
}

// request is a parsed RRQ or WRQ.
type request struct {
	op       uint16
	filename string // as sent
	mode     string // lower case: "octet" or "netascii"
	options  []option
}

var errMalformed = errors.New("malformed request")

// parseRequest parses an RRQ or WRQ. It is lenient where real clients are
// sloppy (a missing final NUL, a dangling option name, upper-case names) and
// strict where leniency would change what is served (empty name, bad mode).
func parseRequest(b []byte) (request, error) {
	if len(b) < 2 {
		return request{}, errMalformed
	}
	r := request{op: binary.BigEndian.Uint16(b)}
	if r.op != opRRQ && r.op != opWRQ {
		return request{}, fmt.Errorf("%w: opcode %d is not a request", errMalformed, r.op)
	}
	rest := b[2:]
	// Trailing NULs are padding (some ROMs pad the packet); dropping them also
	// makes a missing final NUL and a present one parse the same.
	rest = bytes.TrimRight(rest, "\x00")
	fields := strings.Split(string(rest), "\x00")
	if len(fields) < 2 || fields[0] == "" {
		return request{}, fmt.Errorf("%w: missing file name or mode", errMalformed)
	}
	r.filename = fields[0]
	r.mode = strings.ToLower(fields[1])
	switch r.mode {
	case "octet", "netascii":
	default:
		return request{}, fmt.Errorf("%w: unsupported mode %q", errMalformed, fields[1])
	}
	seen := map[string]bool{}
	for i := 2; i+1 < len(fields); i += 2 {
		key := strings.ToLower(fields[i])
		if key == "" || fields[i+1] == "" || seen[key] {
			// RFC 2347 options have non-empty names and values, and gives
			// no meaning to repeats; the first one wins.
			continue
		}
		seen[key] = true
		r.options = append(r.options, option{name: fields[i], value: fields[i+1]})
	}
	return r, nil
}

// appendRequest encodes a request; the tests and the fuzz target use it to
// check that parsing round-trips.
func appendRequest(b []byte, r request) []byte {
	b = binary.BigEndian.AppendUint16(b, r.op)
	b = append(append(b, r.filename...), 0)
	b = append(append(b, r.mode...), 0)
	for _, o := range r.options {
		b = append(append(b, o.name...), 0)
		b = append(append(b, o.value...), 0)
	}
	return b
}

func appendOACK(b []byte, opts []option) []byte {
	b = binary.BigEndian.AppendUint16(b, opOACK)
	for _, o := range opts {
		b = append(append(b, o.name...), 0)
		b = append(append(b, o.value...), 0)
	}
	return b
}

func appendError(b []byte, code ErrorCode, msg string) []byte {
	b = binary.BigEndian.AppendUint16(b, opERROR)
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	return append(append(b, msg...), 0)
}

// parseError reads an ERROR packet; b starts at the opcode.
func parseError(b []byte) *ClientError {
	e := &ClientError{Code: ErrCodeNotDefined}
	if len(b) >= 4 {
		e.Code = ErrorCode(binary.BigEndian.Uint16(b[2:]))
		msg := b[4:]
		if i := bytes.IndexByte(msg, 0); i >= 0 {
			msg = msg[:i]
		}
		e.Message = string(msg)
	}
	return e
}

// negotiated holds the transfer parameters after option negotiation.
type negotiated struct {
	blockSize  int
	windowSize int
	timeout    int // seconds the client asked for, 0 if none
	tsize      bool
	oack       []option
}

// limits bound what negotiation may grant.
type limits struct {
	maxBlock       int // <= maxBlockSize
	maxWindow      int
	maxWindowBytes int // window buffers are kept per transfer: windowsize*blksize <= this
}

// negotiate answers the options the server understands and ignores the rest,
// as RFC 2347 asks. size is the file size, or -1 when it is not known in
// advance (tsize is then not acknowledged).
//
// blksize is honoured up to the RFC maximum and never clamped to the path MTU:
// clients that ask for large blocks rely on IP fragmentation, and clamping cut
// throughput sixfold in pin/tftp#51.
func negotiate(opts []option, size int64, lim limits) negotiated {
	n := negotiated{blockSize: defBlockSize, windowSize: 1}
	window := -1 // index in n.oack of windowsize, filled in once blksize is known
	for _, o := range opts {
		switch strings.ToLower(o.name) {
		case "blksize":
			v, err := strconv.Atoi(o.value)
			if err != nil || v < minBlockSize {
				continue
			}
			v = min(v, lim.maxBlock, maxBlockSize)
			n.blockSize = v
			n.oack = append(n.oack, option{o.name, strconv.Itoa(v)})
		case "tsize":
			// An unknown size is not acknowledged. Neither is 0: curl
			// rejects an OACK with tsize 0 as invalid, and a client that
			// gets no tsize simply reads until the short block.
			if size <= 0 {
				continue
			}
			n.tsize = true
			n.oack = append(n.oack, option{o.name, strconv.FormatInt(size, 10)})
		case "timeout":
			v, err := strconv.Atoi(o.value)
			if err != nil || v < 1 || v > maxTimeoutSecs {
				continue
			}
			n.timeout = v
			n.oack = append(n.oack, option{o.name, strconv.Itoa(v)})
		case "windowsize":
			v, err := strconv.Atoi(o.value)
			if err != nil || v < 1 || v > maxWindowSize {
				continue
			}
			n.windowSize = v
			window = len(n.oack)
			n.oack = append(n.oack, option{o.name, ""})
		}
	}
	if window >= 0 {
		n.windowSize = max(1, min(n.windowSize, lim.maxWindow, lim.maxWindowBytes/n.blockSize))
		n.oack[window].value = strconv.Itoa(n.windowSize)
	}
	return n
}
