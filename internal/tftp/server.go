package tftp

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/ratelimit"
)

// Config configures a Server. Zero values take the documented defaults.
type Config struct {
	// Opener chooses what each read request gets. Required.
	Opener Opener
	// Logger receives transfer logs; nil means slog.Default().
	Logger *slog.Logger
	// MaxTransfers bounds concurrent transfers (default 512). Requests beyond
	// it get an ERROR "server busy" at once, so clients retry instead of
	// piling up behind a server that cannot keep up.
	MaxTransfers int
	// IdleTimeout ends a transfer whose client has acknowledged nothing new
	// for this long (default 30s, or 3× a negotiated timeout if longer). It
	// must outlast a client's own retry: see MaxRetransmit.
	IdleTimeout time.Duration
	// InitialRetransmit is the retransmission timeout before any round trip
	// has been measured (default 500ms).
	InitialRetransmit time.Duration
	// MinRetransmit and MaxRetransmit bound the adaptive retransmission
	// timeout (defaults 50ms and 8s). A client's timeout option replaces
	// MaxRetransmit for its transfer. The 8s ceiling is above the usual 5s
	// client timeout on purpose: atftp ignores a window it already has and
	// re-sends its lost ACK only when its own timer fires, which a server
	// retransmitting more often than every 5s would keep resetting forever.
	MinRetransmit, MaxRetransmit time.Duration
	// MaxBlockSize caps blksize (default and maximum 65464).
	MaxBlockSize int
	// MaxWindowSize caps windowsize (default 64). A window is kept in memory
	// per transfer, so it is also capped to 1 MiB of blocks.
	MaxWindowSize int
	// OnTransfer, if set, is called once per answered request (including
	// refused ones) when it ends. It runs on the transfer's goroutine, or the
	// listener's for busy refusals, so it must not block.
	OnTransfer func(TransferInfo)
}

// TransferInfo describes one request and how it ended.
type TransferInfo struct {
	Name        string // Request.Path, or the raw name if it could not be cleaned
	Client      netip.AddrPort
	Local       netip.Addr // server address the request arrived on, if known
	Write       bool       // a WRQ, always refused
	Size        int64      // file size; -1 if unknown or not opened
	Bytes       int64      // payload bytes the client acknowledged
	BlockSize   int
	WindowSize  int
	Start       time.Time
	Duration    time.Duration
	Retransmits int
	Completed   bool
	// Aborted: the client sent an ERROR packet (Err is a *ClientError).
	Aborted bool
	// Probe: the client aborted right after the OACK of a tsize request,
	// which is how UEFI firmware learns a file's size before fetching it.
	Probe bool
	Err   error
}

const (
	maxWindowBytes = 1 << 20
	maxWindowHard  = 4096 // keeps ACK numbers unambiguous across rollover
)

// busyLogEvery spaces the log lines of busy refusals.
const busyLogEvery = 10 * time.Second

// Server is a read-only TFTP server. One Server may serve several listeners
// (e.g. IPv4 and IPv6) at once; MaxTransfers is shared between them.
type Server struct {
	cfg   Config
	log   *slog.Logger
	slots chan struct{}
}

// New checks cfg, fills in defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Opener == nil {
		return nil, errors.New("tftp: Config.Opener is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.MaxTransfers <= 0 {
		cfg.MaxTransfers = 512
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 30 * time.Second
	}
	if cfg.InitialRetransmit <= 0 {
		cfg.InitialRetransmit = 500 * time.Millisecond
	}
	if cfg.MinRetransmit <= 0 {
		cfg.MinRetransmit = 50 * time.Millisecond
	}
	if cfg.MaxRetransmit <= 0 {
		cfg.MaxRetransmit = 8 * time.Second
	}
	if cfg.MaxBlockSize <= 0 || cfg.MaxBlockSize > maxBlockSize {
		cfg.MaxBlockSize = maxBlockSize
	}
	if cfg.MaxBlockSize < minBlockSize {
		return nil, fmt.Errorf("tftp: MaxBlockSize %d below %d", cfg.MaxBlockSize, minBlockSize)
	}
	if cfg.MaxWindowSize <= 0 {
		cfg.MaxWindowSize = 64
	}
	cfg.MaxWindowSize = min(cfg.MaxWindowSize, maxWindowHard)
	return &Server{cfg: cfg, log: cfg.Logger, slots: make(chan struct{}, cfg.MaxTransfers)}, nil
}

// ListenAndServe listens on addr (e.g. ":69", "[::]:69", "192.0.2.1:69";
// an empty host listens on IPv4 and IPv6) and serves until ctx is done.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	pc, err := Listen(addr)
	if err != nil {
		return err
	}
	defer pc.Close()
	return s.Serve(ctx, pc)
}

// Listen opens the socket ListenAndServe serves on, for a caller that must
// know it is bound before it serves (a reload that moves the listener).
func Listen(addr string) (net.PacketConn, error) {
	network := "udp"
	if host, _, err := net.SplitHostPort(addr); err == nil && host != "" {
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
			network = "udp4"
		}
	}
	pc, err := net.ListenPacket(network, addr)
	if err != nil {
		return nil, fmt.Errorf("tftp listen %s: %w", addr, err)
	}
	// A boot storm's requests arrive in one burst: with the default
	// buffer (about 200 KB) a 10,000-machine storm overflowed it 50,000
	// times, and each lost request cost its ROM a retransmission timeout.
	// As the DHCP listeners do; the kernel caps it at net.core.rmem_max.
	if uc, ok := pc.(*net.UDPConn); ok {
		_ = uc.SetReadBuffer(4 << 20)
	}
	return pc, nil
}

// Serve answers requests arriving on pc until ctx is done, then waits for
// its transfers to stop and returns nil. Each transfer runs on its own
// ephemeral UDP socket bound to the address the request was sent to. Serve
// does not close pc.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	uc, _ := pc.(*net.UDPConn)
	dstInfo := uc != nil && enableDstInfo(uc) == nil
	var listenAddr netip.AddrPort
	if ua, ok := pc.LocalAddr().(*net.UDPAddr); ok {
		listenAddr = ua.AddrPort()
	}
	v6socket := listenAddr.Addr().Is6() && !listenAddr.Addr().Is4In6()

	// Serve never sets deadlines itself, so a past deadline is a clean way to
	// end the blocking read; it is undone on return because pc is not ours.
	stop := context.AfterFunc(ctx, func() { pc.SetReadDeadline(time.Unix(1, 0)) })
	defer func() {
		if !stop() {
			pc.SetReadDeadline(time.Time{})
		}
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	busyLog := ratelimit.Every{Interval: busyLogEvery}
	buf := make([]byte, 2048) // requests are small; longer ones are truncated and fail to parse
	oob := make([]byte, oobSpace())
	for {
		var (
			n      int
			peer   netip.AddrPort
			local  netip.Addr
			rerr   error
			oobn   int
			packet []byte
		)
		if uc != nil {
			n, oobn, _, peer, rerr = uc.ReadMsgUDPAddrPort(buf, oob)
		} else {
			var a net.Addr
			n, a, rerr = pc.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				peer = ua.AddrPort()
			}
		}
		if rerr != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(rerr, net.ErrClosed) {
				return fmt.Errorf("tftp serve %s: %w", pc.LocalAddr(), rerr)
			}
			s.log.Warn("tftp read failed", "listen", pc.LocalAddr().String(), "err", rerr)
			continue
		}
		packet = buf[:n]
		if dstInfo {
			local = parseDst(oob[:oobn])
		}
		if !local.IsValid() && listenAddr.Addr().IsValid() && !listenAddr.Addr().IsUnspecified() {
			local = listenAddr.Addr().Unmap()
		}
		reply := func(code ErrorCode, msg string) {
			b := appendError(nil, code, msg)
			if uc != nil {
				if _, _, err := uc.WriteMsgUDPAddrPort(b, srcOOB(local, v6socket), peer); err == nil {
					return
				}
				uc.WriteToUDPAddrPort(b, peer)
				return
			}
			pc.WriteTo(b, net.UDPAddrFromAddrPort(peer))
		}
		r, err := parseRequest(packet)
		if err != nil {
			if len(packet) >= 2 && (packet[1] == byte(opRRQ) || packet[1] == byte(opWRQ)) && packet[0] == 0 {
				s.log.Debug("tftp bad request", "client", peer.String(), "err", err)
				reply(ErrCodeIllegalOp, err.Error())
			}
			continue // stray DATA/ACK/ERROR on the listen port: ignore
		}
		client := netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
		select {
		case s.slots <- struct{}{}:
		default:
			reply(ErrCodeNotDefined, "server busy")
			// One line per interval, with the count: a storm's ROMs
			// retrying would otherwise write one per request (377,000
			// lines in a 10,000-machine storm), and anyone can send them.
			if n, ok := busyLog.Tick(time.Now()); ok {
				s.log.Warn("tftp busy, requests refused", "client", client.String(), "file", r.filename,
					"max_transfers", s.cfg.MaxTransfers, "refused_since_last_line", n)
			}
			s.report(TransferInfo{Name: r.filename, Client: client, Local: local, Write: r.op == opWRQ,
				Size: -1, Start: time.Now(), Err: ErrBusy})
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-s.slots }()
			s.serveRequest(ctx, r, client, local)
		}()
	}
}

func (s *Server) report(info TransferInfo) {
	if s.cfg.OnTransfer != nil {
		s.cfg.OnTransfer(info)
	}
}

// serveRequest answers one RRQ or WRQ from its own socket, so the client
// learns the transfer ID (the port) from the very first answer.
func (s *Server) serveRequest(ctx context.Context, r request, client netip.AddrPort, local netip.Addr) {
	info := TransferInfo{Name: r.filename, Client: client, Local: local, Write: r.op == opWRQ,
		Size: -1, BlockSize: defBlockSize, WindowSize: 1, Start: time.Now()}
	log := s.log.With("client", client.String(), "file", r.filename)
	defer func() {
		info.Duration = time.Since(info.Start)
		s.logEnd(log, info)
		s.report(info)
	}()

	conn, err := listenTransfer(local, client)
	if err != nil {
		info.Err = fmt.Errorf("tftp %s: transfer socket: %w", r.filename, err)
		return
	}
	defer conn.Close()
	refuse := func(e *Error, cause error) {
		conn.Write(appendError(nil, e.Code, e.Message))
		info.Err = cause
	}
	if r.op == opWRQ {
		refuse(&Error{Code: ErrCodeAccess, Message: "read-only server"}, ErrAccess)
		return
	}
	path, err := cleanPath(r.filename)
	if err != nil {
		refuse(toWireError(err), fmt.Errorf("tftp %s: %w", r.filename, err))
		return
	}
	info.Name = path
	opts := make(map[string]string, len(r.options))
	for _, o := range r.options {
		opts[strings.ToLower(o.name)] = o.value
	}
	f, err := s.cfg.Opener.Open(ctx, Request{Path: path, RawName: r.filename, Client: client,
		Local: local, Mode: r.mode, Options: opts})
	if err != nil {
		refuse(toWireError(err), err)
		return
	}
	defer f.Close()
	info.Size = f.Size()
	t := newTransfer(s.cfg, conn, client, r, f)
	info.BlockSize, info.WindowSize = t.neg.blockSize, t.neg.windowSize
	err = t.run(ctx)
	info.Bytes, info.Retransmits = t.ackedBytes(), t.retransmits
	var ce *ClientError
	switch {
	case err == nil:
		info.Completed = true
	case errors.As(err, &ce):
		info.Aborted = true
		info.Probe = t.base == 0 && t.neg.tsize
	}
	if err != nil {
		info.Err = fmt.Errorf("tftp %s: %w", path, err)
	}
}

func (s *Server) logEnd(log *slog.Logger, info TransferInfo) {
	attrs := []any{"bytes", info.Bytes, "duration", info.Duration, "blksize", info.BlockSize,
		"windowsize", info.WindowSize, "retransmits", info.Retransmits}
	switch {
	case info.Completed:
		log.Debug("tftp transfer done", attrs...)
	case info.Probe:
		log.Debug("tftp size probe ended by client", append(attrs, "err", info.Err)...)
	case info.Aborted, errors.Is(info.Err, ErrNoFinalAck), errors.Is(info.Err, ErrClientGone):
		log.Debug("tftp transfer ended by client", append(attrs, "err", info.Err)...)
	case errors.Is(info.Err, fs.ErrNotExist), errors.Is(info.Err, fs.ErrPermission), errors.Is(info.Err, context.Canceled):
		// pxelinux and GRUB probe many names before one exists: routine.
		log.Debug("tftp request refused", append(attrs, "err", info.Err)...)
	default:
		log.Warn("tftp transfer failed", append(attrs, "err", info.Err)...)
	}
}

// listenTransfer opens the transfer's socket on the address the request
// arrived on, so multi-homed servers answer from the address the client used,
// and connects it to the client, as tftpd-hpa does: the kernel then drops
// packets from other peers and reports an ICMP port-unreachable from a client
// that has gone, which ends its transfer at once instead of after a timeout.
func listenTransfer(local netip.Addr, client netip.AddrPort) (*net.UDPConn, error) {
	network := "udp4"
	if client.Addr().Is6() {
		network = "udp6"
	}
	var laddr *net.UDPAddr
	if local.IsValid() && local.Is6() == client.Addr().Is6() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0))
	}
	return net.DialUDP(network, laddr, net.UDPAddrFromAddrPort(client))
}
