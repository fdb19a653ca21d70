package tftp

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTransferSizes(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		ts := startServer(t, network, lockStep)
		cases := []struct {
			name            string
			size            int
			blksize, window int
			wantBlocks      int
		}{
			{"empty", 0, 0, 0, 1},
			{"one-short", 100, 0, 0, 1},
			{"exact-512", 1024, 0, 0, 3}, // two full blocks and an empty one
			{"exact-1468", 1468 * 3, 1468, 0, 4},
			{"exact-window", 1468 * 16, 1468, 16, 17},
			{"odd-window", 1468*37 + 5, 1468, 8, 38},
			{"big-block", 200000, 65464, 0, 4},
		}
		for i, tc := range cases {
			t.Run(network+"/"+tc.name, func(t *testing.T) {
				data := randomBytes(tc.size, byte(i))
				ts.write(t, tc.name, data)
				got := newRawClient(t, ts.addr).fetchAll(tc.name, tc.blksize, tc.window)
				if !bytes.Equal(got, data) {
					t.Fatalf("got %d bytes (sha %s), want %d (sha %s)", len(got), sha(got), len(data), sha(data))
				}
				info := ts.info(t)
				if !info.Completed || info.Err != nil || info.Bytes != int64(tc.size) || info.Size != int64(tc.size) {
					t.Fatalf("report %+v", info)
				}
				if want := max(tc.window, 1); info.WindowSize != want {
					t.Errorf("windowsize %d, want %d", info.WindowSize, want)
				}
				blk := tc.blksize
				if blk == 0 {
					blk = 512
				}
				if n := tc.size/blk + 1; n != tc.wantBlocks {
					t.Fatalf("test case wrong: %d blocks", n)
				}
			})
		}
	}
}

func TestOptionNegotiation(t *testing.T) {
	ts := startServer(t, "udp4", lockStep)
	data := randomBytes(5000, 1)
	ts.write(t, "f", data)

	c := newRawClient(t, ts.addr)
	// Unknown options are ignored, names keep the client's spelling, blksize
	// above the RFC maximum is lowered to it, and windowsize is capped so a
	// window of 65464-byte blocks stays within 1 MiB.
	c.rrq("f", "BLKSIZE", "70000", "tsize", "0", "foo", "bar", "timeout", "3", "windowsize", "64")
	p := c.recv()
	want := map[string]string{"BLKSIZE": "65464", "tsize": "5000", "timeout": "3", "windowsize": "16"}
	if p.op != opOACK || fmt.Sprint(p.opts) != fmt.Sprint(want) {
		t.Fatalf("got %s %v, want OACK %v", p, p.opts, want)
	}
	c.ack(0)
	if got := c.expectData(1); !bytes.Equal(got, data) {
		t.Fatal("wrong data")
	}
	c.ack(1)
	if info := ts.info(t); !info.Completed || info.BlockSize != 65464 || info.WindowSize != 16 {
		t.Fatalf("report %+v", info)
	}

	// Invalid values are ignored rather than refused; with nothing left to
	// acknowledge the server goes straight to DATA 1.
	c = newRawClient(t, ts.addr)
	c.rrq("f", "blksize", "7", "timeout", "0", "windowsize", "x", "tsize", "")
	c.expectData(1)
	c.sendError(ErrCodeNotDefined, "done")
	if info := ts.info(t); !info.Aborted || info.Probe {
		t.Fatalf("report %+v", info)
	}
}

func TestNegotiate(t *testing.T) {
	lim := limits{maxBlock: maxBlockSize, maxWindow: 64, maxWindowBytes: 1 << 20}
	opts := func(kv ...string) []option {
		var o []option
		for i := 0; i < len(kv); i += 2 {
			o = append(o, option{kv[i], kv[i+1]})
		}
		return o
	}
	cases := []struct {
		in          []option
		size        int64
		lim         limits
		blk, window int
		oack        string
	}{
		{nil, 10, lim, 512, 1, "[]"},
		{opts("blksize", "1468"), 10, lim, 1468, 1, "[{blksize 1468}]"},
		{opts("blksize", "8"), 10, lim, 8, 1, "[{blksize 8}]"},
		{opts("blksize", "65465"), 10, lim, 65464, 1, "[{blksize 65464}]"},
		{opts("blksize", "1468"), 10, limits{maxBlock: 1024, maxWindow: 64, maxWindowBytes: 1 << 20}, 1024, 1, "[{blksize 1024}]"},
		{opts("tsize", "0"), -1, lim, 512, 1, "[]"},
		{opts("tsize", "0"), 0, lim, 512, 1, "[]"},
		{opts("tsize", "0"), 1, lim, 512, 1, "[{tsize 1}]"},
		{opts("timeout", "255", "windowsize", "65535"), 1, lim, 512, 64, "[{timeout 255} {windowsize 64}]"},
		{opts("timeout", "256", "windowsize", "0"), 1, lim, 512, 1, "[]"},
		// windowsize before blksize: the memory cap uses the final blksize.
		{opts("windowsize", "64", "blksize", "32768"), 1, lim, 32768, 32, "[{windowsize 32} {blksize 32768}]"},
	}
	for _, tc := range cases {
		n := negotiate(tc.in, tc.size, tc.lim)
		if n.blockSize != tc.blk || n.windowSize != tc.window || fmt.Sprint(n.oack) != tc.oack {
			t.Errorf("negotiate(%v, %d) = blk %d window %d oack %v; want %d %d %s",
				tc.in, tc.size, n.blockSize, n.windowSize, n.oack, tc.blk, tc.window, tc.oack)
		}
	}
}

// A duplicate ACK in lock-step must not trigger a resend (Sorcerer's
// Apprentice): if it did, DATA 2 would arrive twice before DATA 3.
func TestLockStepDuplicateACK(t *testing.T) {
	ts := startServer(t, "udp4", lockStep)
	data := randomBytes(512*3+1, 2)
	ts.write(t, "f", data)
	c := newRawClient(t, ts.addr)
	c.rrq("f")
	c.expectData(1)
	c.ack(1)
	c.ack(1)
	c.ack(1)
	c.expectData(2)
	c.ack(0) // stale, from before block 1: ignored too
	c.ack(2)
	c.expectData(3)
	c.ack(3)
	c.expectData(4)
	c.ack(4)
	if info := ts.info(t); !info.Completed || info.Retransmits != 0 {
		t.Fatalf("report %+v", info)
	}
}

// RFC 7440: an ACK inside the window means the blocks after it were lost, so
// the next window starts right after it. A duplicate of the last ACK asks for
// the window again, once.
func TestWindowRollback(t *testing.T) {
	ts := startServer(t, "udp4", lockStep)
	data := randomBytes(100, 3) // 13 blocks of 8 bytes, the last one 4 bytes
	ts.write(t, "f", data)
	c := newRawClient(t, ts.addr)
	c.rrq("f", "blksize", "8", "windowsize", "4")
	if p := c.recv(); p.op != opOACK {
		t.Fatalf("got %s", p)
	}
	c.ack(0)
	for n := uint16(1); n <= 4; n++ {
		c.expectData(n)
	}
	c.ack(2) // "lost" 3
	for n := uint16(3); n <= 6; n++ {
		c.expectData(n)
	}
	c.ack(6)
	for n := uint16(7); n <= 10; n++ {
		c.expectData(n)
	}
	c.ack(6) // "lost" 7: the window is sent again
	c.ack(6) // and not a third time
	for n := uint16(7); n <= 10; n++ {
		c.expectData(n)
	}
	c.ack(10)
	for n := uint16(11); n <= 13; n++ {
		d := c.expectData(n)
		if n == 13 && len(d) != 4 {
			t.Fatalf("last block %d bytes", len(d))
		}
	}
	c.ack(13)
	info := ts.info(t)
	if !info.Completed || info.Bytes != 100 || info.WindowSize != 4 || info.BlockSize != 8 {
		t.Fatalf("report %+v", info)
	}
}

// Block numbers wrap from 65535 to 0; the transfer must go on past it, in
// lock-step and with windows straddling the wrap.
func TestBlockRollover(t *testing.T) {
	ts := startServer(t, "udp4", lockStep)
	const blocks = 65536 + 300
	data := randomBytes(blocks*8+3, 4)
	ts.write(t, "f", data)
	for _, window := range []int{1, 7} {
		t.Run(strconv.Itoa(window), func(t *testing.T) {
			got := newRawClient(t, ts.addr).fetchAll("f", 8, window)
			if !bytes.Equal(got, data) {
				t.Fatalf("got %d bytes, want %d", len(got), len(data))
			}
			if info := ts.info(t); !info.Completed || info.Bytes != int64(len(data)) {
				t.Fatalf("report %+v", info)
			}
		})
	}
}

func TestPathEscapes(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, "udp4", nil)
	ts.write(t, "pxelinux.cfg/default", []byte("DEFAULT linux\n"))
	ts.write(t, "boot/x86/wdsnbp.com", []byte("wds"))
	for name, target := range map[string]string{
		"escape":   filepath.Join(outside, "secret"),
		"escape2":  "../" + filepath.Base(outside) + "/secret",
		"inside":   "pxelinux.cfg/default",
		"loop":     "loop",
		"absolute": "/etc/hostname",
	} {
		if err := os.Symlink(target, filepath.Join(ts.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		code ErrorCode // 0 means served
		want string
	}{
		{"../secret", ErrCodeAccess, ""},
		{"pxelinux.cfg/../../secret", ErrCodeAccess, ""},
		{`..\secret`, ErrCodeAccess, ""},
		{"escape", ErrCodeAccess, ""},
		{"escape2", ErrCodeAccess, ""},
		{"absolute", ErrCodeAccess, ""},
		{"loop", ErrCodeAccess, ""},
		{"/etc/passwd", ErrCodeNotFound, ""}, // a leading slash means the TFTP root
		{"pxelinux.cfg", ErrCodeNotFound, ""},
		{"/", ErrCodeNotFound, ""},
		{"missing", ErrCodeNotFound, ""},
		{"pxelinux.cfg/default/x", ErrCodeNotFound, ""},
		{"inside", 0, "DEFAULT linux\n"},
		{"/pxelinux.cfg/./default", 0, "DEFAULT linux\n"},
		{"//pxelinux.cfg//default", 0, "DEFAULT linux\n"},
		{`boot\x86\wdsnbp.com`, 0, "wds"},
	}
	for _, tc := range cases {
		c := newRawClient(t, ts.addr)
		c.rrq(tc.name)
		if tc.code == 0 {
			got := c.expectData(1)
			c.ack(1)
			if string(got) != tc.want {
				t.Errorf("%q: got %q", tc.name, got)
			}
		} else {
			p := c.recv()
			if p.op != opERROR || ErrorCode(p.block) != tc.code {
				t.Errorf("%q: got %s, want ERROR %d", tc.name, p, tc.code)
			}
			if bytes.Contains(p.data, []byte(outside)) || bytes.Contains(p.data, []byte(ts.dir)) {
				t.Errorf("%q: error reveals a path: %q", tc.name, p.data)
			}
		}
		info := ts.info(t)
		if (tc.code == 0) != info.Completed {
			t.Errorf("%q: report %+v", tc.name, info)
		}
	}
}

func TestOpenerErrors(t *testing.T) {
	errFor := map[string]error{
		"nf":      fmt.Errorf("lookup: %w", fs.ErrNotExist),
		"perm":    fs.ErrPermission,
		"unsup":   errors.ErrUnsupported,
		"opt":     fmt.Errorf("wrapped: %w", ErrOptionRefused),
		"custom":  &Error{Code: ErrCodeAccess, Message: "not your file"},
		"private": errors.New("database password is hunter2"),
	}
	opener := OpenerFunc(func(_ context.Context, r Request) (File, error) {
		if r.Path == "ok" {
			if r.RawName != "/ok" || r.Mode != "octet" || r.Options["blksize"] != "1024" || !r.Client.Addr().IsLoopback() || r.Local != netip.MustParseAddr("127.0.0.1") {
				return nil, fmt.Errorf("unexpected request %+v", r)
			}
			return BytesFile([]byte("rendered")), nil
		}
		return nil, errFor[r.Path]
	})
	ts := startServerWith(t, "udp4", "", opener, lockStep)
	want := map[string]struct {
		code ErrorCode
		msg  string
	}{
		"nf": {1, "file not found"}, "perm": {2, "access violation"}, "unsup": {4, "illegal operation"},
		"opt": {8, "option negotiation refused"}, "custom": {2, "not your file"}, "private": {0, "server error"},
	}
	for name, w := range want {
		c := newRawClient(t, ts.addr)
		c.rrq(name)
		p := c.expectError(w.code)
		if string(p.data) != w.msg {
			t.Errorf("%s: message %q, want %q", name, p.data, w.msg)
		}
		if info := ts.info(t); info.Completed || !errors.Is(info.Err, errFor[name]) {
			t.Errorf("%s: report %+v", name, info)
		}
	}
	c := newRawClient(t, ts.addr)
	c.rrq("/ok", "blksize", "1024")
	if p := c.recv(); p.op != opOACK {
		t.Fatalf("got %s", p)
	}
	c.ack(0)
	if got := c.expectData(1); string(got) != "rendered" {
		t.Fatalf("got %q (%s)", got, got)
	}
	c.ack(1)
	if info := ts.info(t); !info.Completed || info.Name != "ok" {
		t.Fatalf("report %+v", info)
	}
}

func TestWriteRefused(t *testing.T) {
	ts := startServer(t, "udp6", nil)
	c := newRawClient(t, ts.addr)
	c.request(opWRQ, "upload.bin", "blksize", "1468")
	p := c.expectError(ErrCodeAccess)
	if string(p.data) != "read-only server" {
		t.Errorf("message %q", p.data)
	}
	if info := ts.info(t); !info.Write || info.Completed {
		t.Fatalf("report %+v", info)
	}
	if _, err := os.Stat(filepath.Join(ts.dir, "upload.bin")); err == nil {
		t.Fatal("WRQ created a file")
	}
}

// UEFI firmware asks for tsize, reads the OACK and aborts; that is a probe,
// not a failure.
func TestTsizeProbe(t *testing.T) {
	ts := startServer(t, "udp4", lockStep)
	ts.write(t, "grubx64.efi", randomBytes(4096, 5))
	c := newRawClient(t, ts.addr)
	c.rrq("grubx64.efi", "tsize", "0", "blksize", "1468")
	p := c.recv()
	if p.op != opOACK || p.opts["tsize"] != "4096" || p.opts["blksize"] != "1468" {
		t.Fatalf("got %s %v", p, p.opts)
	}
	c.sendError(ErrCodeOptionRefused, "tsize probe")
	info := ts.info(t)
	var ce *ClientError
	if !info.Probe || !info.Aborted || info.Completed || !errors.As(info.Err, &ce) || ce.Code != ErrCodeOptionRefused {
		t.Fatalf("report %+v", info)
	}
}

func TestBusy(t *testing.T) {
	ts := startServer(t, "udp4", func(c *Config) { lockStep(c); c.MaxTransfers = 1 })
	data := randomBytes(700, 6)
	ts.write(t, "f", data)
	a := newRawClient(t, ts.addr)
	a.rrq("f")
	a.expectData(1) // a's transfer now holds the only slot

	b := newRawClient(t, ts.addr)
	b.rrq("f")
	p := b.expectError(ErrCodeNotDefined)
	if string(p.data) != "server busy" {
		t.Fatalf("message %q", p.data)
	}
	if p.from != ts.addr {
		t.Errorf("busy error from %v, want the listen address %v", p.from, ts.addr)
	}
	if info := ts.info(t); !errors.Is(info.Err, ErrBusy) {
		t.Fatalf("report %+v", info)
	}
	a.ack(1)
	a.expectData(2)
	a.ack(2)
	if info := ts.info(t); !info.Completed {
		t.Fatalf("report %+v", info)
	}
	// The slot is released before the report, so a retry now succeeds.
	if got := newRawClient(t, ts.addr).fetchAll("f", 0, 0); !bytes.Equal(got, data) {
		t.Fatal("retry after busy failed")
	}
}

func TestRetransmitAndIdleTimeout(t *testing.T) {
	ts := startServer(t, "udp4", func(c *Config) {
		c.InitialRetransmit = 20 * time.Millisecond
		c.MinRetransmit = 20 * time.Millisecond
		c.MaxRetransmit = 40 * time.Millisecond
		c.IdleTimeout = 400 * time.Millisecond
	})
	data := randomBytes(600, 7)
	ts.write(t, "f", data)

	// A client that never acknowledges gets DATA 1 again, then is dropped.
	c := newRawClient(t, ts.addr)
	c.rrq("f")
	c.expectData(1)
	c.expectData(1)
	info := ts.info(t)
	if !errors.Is(info.Err, ErrTimeout) || info.Retransmits == 0 || info.Bytes != 0 {
		t.Fatalf("report %+v", info)
	}

	// A lost ACK is recovered by the server's retransmission.
	c = newRawClient(t, ts.addr)
	c.rrq("f")
	c.expectData(1)
	c.expectData(1) // as if our first ACK had been lost
	c.ack(1)
	for {
		p := c.recv()
		if p.op == opDATA && p.block == 1 {
			continue // a retransmission that crossed our ACK
		}
		if p.op != opDATA || p.block != 2 || len(p.data) != 88 {
			t.Fatalf("got %s", p)
		}
		break
	}
	// Never acknowledging the last block: the client probably has the file,
	// and the report says so rather than calling it a plain timeout.
	info = ts.info(t)
	if !errors.Is(info.Err, ErrNoFinalAck) || info.Bytes != 512 {
		t.Fatalf("report %+v", info)
	}
}

// The transfer socket is connected to the client, so a stranger's packet
// never reaches the transfer, which carries on.
func TestStrangerIgnored(t *testing.T) {
	ts := startServer(t, "udp4", lockStep)
	data := randomBytes(1000, 8)
	ts.write(t, "f", data)
	c := newRawClient(t, ts.addr)
	c.rrq("f")
	c.expectData(1)
	stranger := newRawClient(t, ts.addr)
	stranger.sendRaw(c.peer, []byte{0, byte(opACK), 0, 1})
	stranger.sendRaw(c.peer, appendError(nil, ErrCodeNotDefined, "go away"))
	c.ack(1)
	c.expectData(2)
	c.ack(2)
	if info := ts.info(t); !info.Completed {
		t.Fatalf("report %+v", info)
	}
}

// A client that exits leaves a closed port: the ICMP error ends the
// transfer without waiting for the idle timeout.
func TestClientGone(t *testing.T) {
	ts := startServer(t, "udp4", func(c *Config) {
		lockStep(c)
		c.InitialRetransmit, c.MinRetransmit, c.MaxRetransmit = 10*time.Millisecond, 10*time.Millisecond, 10*time.Millisecond
	})
	ts.write(t, "f", randomBytes(5000, 10))
	c := newRawClient(t, ts.addr)
	c.rrq("f")
	c.expectData(1)
	c.conn.Close()
	if info := ts.info(t); !errors.Is(info.Err, ErrClientGone) {
		t.Fatalf("report %+v", info)
	}
}

func TestNetascii(t *testing.T) {
	ts := startServer(t, "udp4", lockStep)
	ts.write(t, "cfg", []byte("a\nb\rc\r\n"))
	c := newRawClient(t, ts.addr)
	c.sendRaw(ts.addr, appendRequest(nil, request{op: opRRQ, filename: "cfg", mode: "NetASCII",
		options: []option{{"tsize", "0"}, {"blksize", "512"}}}))
	p := c.recv()
	if _, ok := p.opts["tsize"]; p.op != opOACK || ok {
		t.Fatalf("got %s %v; netascii length is unknown, so no tsize", p, p.opts)
	}
	c.ack(0)
	if got := c.expectData(1); string(got) != "a\r\nb\r\x00c\r\x00\r\n" {
		t.Fatalf("got %q", got)
	}
	c.ack(1)
	if info := ts.info(t); !info.Completed {
		t.Fatalf("report %+v", info)
	}
}

// A wildcard listener must answer from the address each request was sent
// to: on loopback, 127.0.0.2 as well as 127.0.0.1.
func TestAnswersFromRequestedAddress(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644)
	opener, err := NewDirOpener(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer opener.Close()
	srv, err := New(Config{Opener: opener, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, pc) }()
	defer func() { cancel(); <-done }()
	port := pc.LocalAddr().(*net.UDPAddr).AddrPort().Port()
	for _, ip := range []string{"127.0.0.1", "127.0.0.2"} {
		to := netip.AddrPortFrom(netip.MustParseAddr(ip), port)
		c := newRawClient(t, to)
		c.rrq("f")
		p := c.recv()
		if p.op != opDATA || p.from.Addr().String() != ip {
			t.Errorf("request to %s answered by %s from %v", ip, p, p.from)
		}
		c.ack(1)
		c = newRawClient(t, to)
		c.rrq("missing")
		if p := c.recv(); p.op != opERROR || p.from.Addr().String() != ip {
			t.Errorf("request to %s answered by %s from %v", ip, p, p.from)
		}
	}
}

// Cancelling the context ends Serve and every transfer, and leaves no
// descriptor behind.
func TestCancelStopsEverything(t *testing.T) {
	before := openFDs(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), randomBytes(100000, 9), 0o644)
	opener, err := NewDirOpener(dir)
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan TransferInfo, 100)
	cfg := Config{Opener: opener, Logger: discardLogger(), OnTransfer: func(i TransferInfo) { reports <- i }}
	lockStep(&cfg)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().(*net.UDPAddr).AddrPort()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- srv.Serve(ctx, pc) }()

	var clients []*net.UDPConn
	for range 20 {
		c := newRawClient(t, addr)
		c.rrq("f")
		c.expectData(1) // transfer running, waiting for an ACK that never comes
		clients = append(clients, c.conn)
		c2 := newRawClient(t, addr)
		c2.rrq("missing")
		c2.expectError(ErrCodeNotFound)
		clients = append(clients, c2.conn)
	}
	for range 20 {
		<-reports // the 20 refusals
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	for range 20 {
		if info := <-reports; !errors.Is(info.Err, context.Canceled) {
			t.Errorf("report %+v", info)
		}
	}
	pc.Close()
	opener.Close()
	for _, c := range clients {
		c.Close()
	}
	if after := openFDs(t); after != before {
		t.Fatalf("%d descriptors open before, %d after", before, after)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	if _, err := New(Config{}); err == nil {
		t.Error("New without Opener succeeded")
	}
	if _, err := New(Config{Opener: OpenerFunc(nil), MaxBlockSize: 4}); err == nil {
		t.Error("New with MaxBlockSize 4 succeeded")
	}
}

// The lead wraps DirOpener, so it must refuse bad paths on its own too.
func TestDirOpenerDirect(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ok"), []byte("x"), 0o644)
	d, err := NewDirOpener(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for path, want := range map[string]error{
		"/etc/passwd": fs.ErrPermission, "../x": fs.ErrPermission, "": fs.ErrPermission,
		"nope": fs.ErrNotExist, "ok/x": fs.ErrNotExist, ".": fs.ErrNotExist,
	} {
		f, err := d.Open(context.Background(), Request{Path: path})
		if !errors.Is(err, want) {
			t.Errorf("Open(%q) = %v, want %v", path, err, want)
		}
		if f != nil {
			f.Close()
		}
	}
	f, err := d.Open(context.Background(), Request{Path: "ok"})
	if err != nil || f.Size() != 1 {
		t.Fatalf("Open(ok) = %v, %v", f, err)
	}
	f.Close()
	if _, err := NewDirOpener(filepath.Join(dir, "missing")); err == nil {
		t.Error("NewDirOpener of a missing dir succeeded")
	}
}

// Busy refusals are each answered and reported, but logged once per
// interval with their count: anyone can send requests.
func TestBusyLogIsBounded(t *testing.T) {
	var log lockedBuffer
	ts := startServer(t, "udp4", func(c *Config) {
		lockStep(c)
		c.MaxTransfers = 1
		c.Logger = slog.New(slog.NewTextHandler(&log, nil))
	})
	ts.write(t, "f", randomBytes(700, 6))
	a := newRawClient(t, ts.addr)
	a.rrq("f")
	a.expectData(1) // a's transfer holds the only slot
	for i := 0; i < 20; i++ {
		b := newRawClient(t, ts.addr)
		b.rrq("f")
		b.expectError(ErrCodeNotDefined)
		if info := ts.info(t); !errors.Is(info.Err, ErrBusy) {
			t.Fatalf("refusal %d reported as %+v", i, info)
		}
	}
	if n := strings.Count(log.String(), "tftp busy"); n != 1 {
		t.Errorf("%d log lines for 20 refusals in one interval, want 1:\n%s", n, log.String())
	}
}
