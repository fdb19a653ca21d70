package dhcp4

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/store/sqlstore"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// capturedAck is a DHCPACK seen on the wire.
type capturedAck struct {
	at   time.Time
	mac  string
	addr netip.Addr
}

// readPcapAcks reads the DHCPACKs out of a tcpdump capture of an Ethernet
// interface. It knows only what tcpdump writes here: classic pcap,
// Ethernet, IPv4, UDP.
func readPcapAcks(r io.Reader) ([]capturedAck, error) {
	var hdr [24]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, fmt.Errorf("pcap header: %w", err)
	}
	var bo binary.ByteOrder
	nano := false
	switch m := binary.LittleEndian.Uint32(hdr[:4]); m {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo, nano = binary.LittleEndian, m == 0xa1b23c4d
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo, nano = binary.BigEndian, m == 0x4d3cb2a1
	default:
		return nil, fmt.Errorf("not a pcap file (magic %#x)", m)
	}
	if lt := bo.Uint32(hdr[20:24]); lt != 1 {
		return nil, fmt.Errorf("pcap link type %d, want Ethernet", lt)
	}
	var out []capturedAck
	for {
		var rec [16]byte
		if _, err := io.ReadFull(r, rec[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return out, nil // tcpdump killed mid-record: keep what is whole
			}
			return out, err
		}
		sec, frac, n := bo.Uint32(rec[0:4]), bo.Uint32(rec[4:8]), bo.Uint32(rec[8:12])
		if n > 1<<16 {
			return out, fmt.Errorf("pcap record of %d bytes", n)
		}
		pkt := make([]byte, n)
		if _, err := io.ReadFull(r, pkt); err != nil {
			return out, nil
		}
		at := time.Unix(int64(sec), int64(frac)*1000)
		if nano {
			at = time.Unix(int64(sec), int64(frac))
		}
		payload, ok := udpPayload(pkt)
		if !ok {
			continue
		}
		p, err := dhcpv4.FromBytes(payload)
		if err != nil || p.OpCode != dhcpv4.OpcodeBootReply || p.MessageType() != dhcpv4.MessageTypeAck {
			continue
		}
		a, ok := addr4(p.YourIPAddr)
		if !ok {
			continue
		}
		out = append(out, capturedAck{at: at, mac: p.ClientHWAddr.String(), addr: a})
	}
}

func udpPayload(eth []byte) ([]byte, bool) {
	if len(eth) < 14+20+8 || binary.BigEndian.Uint16(eth[12:14]) != 0x0800 {
		return nil, false
	}
	ip := eth[14:]
	ihl := int(ip[0]&0x0f) * 4
	if ip[0]>>4 != 4 || ip[9] != 17 || ihl < 20 || len(ip) < ihl+8 {
		return nil, false
	}
	udp := ip[ihl:]
	ulen := int(binary.BigEndian.Uint16(udp[4:6]))
	if ulen < 8 || ulen > len(udp) {
		return nil, false
	}
	return udp[8:ulen], true
}

// buildKickstand builds the real binary, which is what gets killed.
func buildKickstand(t *testing.T) string {
	t.Helper()
	vmtest.Need(t, "go")
	root, err := vmtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "kickstand")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kickstand")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/kickstand: %v\n%s", err, out)
	}
	return bin
}

// waitFile waits until path contains substr.
func waitFile(t *testing.T, path, substr string, d time.Duration) {
	t.Helper()
	waitFor(t, d, fmt.Sprintf("%q in %s", substr, filepath.Base(path)), func() bool {
		b, _ := os.ReadFile(path)
		return bytes.Contains(b, []byte(substr))
	})
}

// TestKill9KeepsAckedLeases is issue 3's durability check: during a
// 2,000-client perfdhcp run, kickstand is killed with SIGKILL and
// restarted. Every DHCPACK captured on the wire must be in the store
// afterwards, and no address may have been ACKed to two MACs.
func TestKill9KeepsAckedLeases(t *testing.T) {
	lab := newLab(t, "ksd4-kill")
	vmtest.Need(t, "perfdhcp", "tcpdump")
	bin := buildKickstand(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run(t, "ip", "-n", lab.Srv, "addr", "add", "198.18.0.1/15", "dev", lab.Bridge)
	run(t, "ip", "-n", lab.Cli, "addr", "add", "198.18.0.2/15", "dev", vmtest.CliVeth)

	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	cfgPath := filepath.Join(dir, "kickstand.yaml")
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	cfg := fmt.Sprintf(`server:
  http: "198.18.0.1:8080"
  data_dir: %s
  templates: %s
menu:
  unknown: ignore
dhcp:
  enabled: true
  mode: server
  interfaces: [%s]
  subnets:
    - subnet: 198.18.0.0/15
      pool: 198.18.1.0-198.19.255.254
      lease_time: 1h
`, data, filepath.Join(dir, "templates"), lab.Bridge)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	starts := 0
	startKickstand := func() *exec.Cmd {
		t.Helper()
		starts++
		logPath := filepath.Join(dir, fmt.Sprintf("kickstand%d.log", starts))
		lf, err := os.Create(logPath)
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		cmd := lab.Cmd(ctx, "srv", bin, "serve", "-c", cfgPath)
		cmd.Stdout, cmd.Stderr = lf, lf
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFile(t, logPath, "DHCPv4 listening", 30*time.Second)
		return cmd
	}

	pcap := filepath.Join(dir, "dhcp.pcap")
	tdLog := filepath.Join(dir, "tcpdump.log")
	tdOut, _ := os.Create(tdLog)
	defer tdOut.Close()
	td := lab.Cmd(ctx, "cli", "tcpdump", "-i", vmtest.CliVeth, "-n", "-U", "-s", "1500", "-w", pcap, "udp and (port 67 or port 68)")
	td.Stdout, td.Stderr = tdOut, tdOut
	if err := td.Start(); err != nil {
		t.Fatal(err)
	}
	defer td.Process.Kill()
	waitFile(t, tdLog, "listening on", 10*time.Second)

	ks := startKickstand()
	var perfOut bytes.Buffer
	// 2,000 clients at 500 DORA/s: about four seconds of traffic, bounded
	// by -p in case exchanges stall.
	perf := lab.Cmd(ctx, "cli", "perfdhcp", "-4", "-l", vmtest.CliVeth, "-r", "500", "-R", "2000", "-n", "2000", "-p", "20")
	perf.Stdout, perf.Stderr = &perfOut, &perfOut
	if err := perf.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := ks.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	ks.Wait()
	time.Sleep(500 * time.Millisecond)
	ks = startKickstand()
	perfErr := perf.Wait()
	t.Logf("perfdhcp (%v):\n%s", perfErr, lastLines(perfOut.String(), 25))
	time.Sleep(500 * time.Millisecond)
	td.Process.Signal(syscall.SIGINT)
	td.Wait()
	ks.Process.Signal(syscall.SIGTERM)
	if err := ks.Wait(); err != nil {
		t.Logf("kickstand exit after SIGTERM: %v", err)
	}

	f, err := os.Open(pcap)
	if err != nil {
		t.Fatal(err)
	}
	acks, err := readPcapAcks(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	before := 0
	for _, a := range acks {
		if a.at.Before(killedAt) {
			before++
		}
	}
	t.Logf("%d ACKs on the wire, %d before the kill -9", len(acks), before)
	if before < 100 || len(acks)-before < 100 {
		t.Fatalf("too few ACKs around the kill to test anything (%d before, %d after)", before, len(acks)-before)
	}

	st, err := sqlstore.OpenSQLite(ctx, data)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	leases, err := st.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[netip.Addr]store.Lease{}
	for _, l := range leases {
		stored[l.Addr] = l
	}
	ackedTo := map[netip.Addr]string{}
	lost := 0
	for _, a := range acks {
		if prev, ok := ackedTo[a.addr]; ok && prev != a.mac {
			t.Errorf("%v ACKed to %s and to %s", a.addr, prev, a.mac)
		}
		ackedTo[a.addr] = a.mac
		l, ok := stored[a.addr]
		if !ok || l.MAC != a.mac || l.State != store.LeaseBound {
			lost++
			if lost <= 10 {
				t.Errorf("ACK of %v to %s at %s is not in the store (row %+v)", a.addr, a.mac, a.at.Format("15:04:05.000"), l)
			}
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d ACKed leases lost", lost, len(acks))
	}
	t.Logf("%d distinct addresses ACKed, %d lease rows stored", len(ackedTo), len(leases))
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func TestReadPcapAcks(t *testing.T) {
	// A capture written by hand: one ACK, one OFFER, one non-UDP frame.
	ack := packet(t, "52:54:00:00:00:10", dhcpv4.WithMessageType(dhcpv4.MessageTypeAck), dhcpv4.WithYourIP([]byte{198, 18, 1, 7}))
	ack.OpCode = dhcpv4.OpcodeBootReply
	offer := packet(t, "52:54:00:00:00:11", dhcpv4.WithMessageType(dhcpv4.MessageTypeOffer), dhcpv4.WithYourIP([]byte{198, 18, 1, 8}))
	offer.OpCode = dhcpv4.OpcodeBootReply
	frame := func(payload []byte) []byte {
		eth := make([]byte, 14)
		binary.BigEndian.PutUint16(eth[12:], 0x0800)
		ip := make([]byte, 20)
		ip[0], ip[9] = 0x45, 17
		udp := make([]byte, 8)
		binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
		return append(append(append(eth, ip...), udp...), payload...)
	}
	var b bytes.Buffer
	hdr := make([]byte, 24)
	binary.LittleEndian.PutUint32(hdr[0:], 0xa1b2c3d4)
	binary.LittleEndian.PutUint32(hdr[20:], 1)
	b.Write(hdr)
	for i, f := range [][]byte{frame(ack.ToBytes()), frame(offer.ToBytes()), make([]byte, 60)} {
		rec := make([]byte, 16)
		binary.LittleEndian.PutUint32(rec[0:], uint32(1700000000+i))
		binary.LittleEndian.PutUint32(rec[8:], uint32(len(f)))
		binary.LittleEndian.PutUint32(rec[12:], uint32(len(f)))
		b.Write(rec)
		b.Write(f)
	}
	b.Write([]byte{1, 2, 3}) // a record cut off by the kill
	acks, err := readPcapAcks(&b)
	if err != nil || len(acks) != 1 || acks[0].mac != "52:54:00:00:00:10" || acks[0].addr.String() != "198.18.1.7" || acks[0].at.Unix() != 1700000000 {
		t.Fatalf("acks = %+v, %v", acks, err)
	}
	if _, err := readPcapAcks(strings.NewReader("not a pcap file at all.....")); err == nil {
		t.Error("garbage accepted as pcap")
	}
}
