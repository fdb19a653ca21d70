package tftp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// peerFiles are served to every real client. Sizes are chosen for the edge
// cases: nothing at all, exact multiples of the block (and window) size,
// which need a final empty DATA, and 33 MiB, past the 65535-block
// rollover at 512-byte blocks.
var peerFileSizes = map[string]int{ // read-only
	"empty":        0,
	"exact512":     512 * 64,
	"exact1468":    1468 * 100,
	"exactwindow":  1468 * 16 * 10,
	"odd":          1_000_003,
	"big33m":       33 << 20,
	"dir/sub/file": 4097,
}

// peerClient runs one real client and returns where it wrote the file.
type peerClient struct {
	name   string
	tool   string
	window int // windowsize the server should grant, 1 for lock-step
	files  []string
	args   func(host string, port uint16, remote, local string) []string
}

func peerClients() []peerClient {
	atftp := func(opts ...string) func(string, uint16, string, string) []string {
		return func(host string, port uint16, remote, local string) []string {
			var a []string
			for _, o := range opts {
				a = append(a, "--option", o)
			}
			return append(a, "-g", "-r", remote, "-l", local, host, strconv.Itoa(int(port)))
		}
	}
	curl := func(blksize int) func(string, uint16, string, string) []string {
		return func(host string, port uint16, remote, local string) []string {
			a := []string{"-sS", "--max-time", "120"}
			if blksize > 0 {
				a = append(a, "--tftp-blksize", strconv.Itoa(blksize))
			}
			u := netip.AddrPortFrom(netip.MustParseAddr(host), port).String()
			return append(a, "-o", local, "tftp://"+u+"/"+remote)
		}
	}
	return []peerClient{
		{name: "tftp-hpa", tool: "tftp", window: 1,
			files: []string{"empty", "exact512", "odd", "dir/sub/file", "big33m"},
			args: func(host string, port uint16, remote, local string) []string {
				a := []string{"-m", "binary"}
				if netip.MustParseAddr(host).Is6() {
					a = append(a, "-6")
				}
				return append(a, host, strconv.Itoa(int(port)), "-c", "get", remote, local)
			}},
		{name: "atftp-ws8", tool: "atftp", window: 8, args: atftp("blksize 1468", "windowsize 8"),
			files: []string{"empty", "exact1468", "exactwindow", "odd"}},
		{name: "atftp-ws16", tool: "atftp", window: 16, args: atftp("blksize 1468", "windowsize 16"),
			files: []string{"empty", "exact1468", "exactwindow", "odd"}},
		// 512-byte blocks in windows of 16: the window straddles the rollover.
		{name: "atftp-ws16-512", tool: "atftp", window: 16, args: atftp("windowsize 16"),
			files: []string{"exact512", "big33m"}},
		{name: "curl-1468", tool: "curl", window: 1, args: curl(1468),
			files: []string{"empty", "exact1468", "odd"}},
		{name: "curl-512", tool: "curl", window: 1, args: curl(0),
			files: []string{"exact512", "big33m"}},
	}
}

func writePeerFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	sums := map[string]string{}
	i := 0
	for name, size := range peerFileSizes {
		data := randomBytes(size, byte(i))
		i++
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sums[name] = sha(data)
	}
	return sums
}

// fetchWith runs a client command (prefix lets the netns test add
// "ip netns exec ...") and checks the file it wrote byte for byte.
func fetchWith(t *testing.T, prefix []string, pc peerClient, host string, port uint16, remote string, wantSize int, wantSum string) {
	t.Helper()
	local := filepath.Join(t.TempDir(), "out")
	argv := append(append(append([]string(nil), prefix...), pc.tool), pc.args(host, port, remote, local)...)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
	if _, err := os.Stat(local); os.IsNotExist(err) && wantSize == 0 {
		// curl writes nothing, not even the file, when no byte arrives.
		if err := os.WriteFile(local, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if got := shaFile(t, local); got != wantSum {
		fi, _ := os.Stat(local)
		t.Fatalf("%v: sha256 %s, want %s (got %d bytes, want %d)\n%s", argv, got, wantSum, fi.Size(), wantSize, out)
	}
}

func TestInteropRealClients(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		ts := startServer(t, network, nil)
		sums := writePeerFiles(t, ts.dir)
		host := ts.addr.Addr().String()
		for _, pc := range peerClients() {
			t.Run(network+"/"+pc.name, func(t *testing.T) {
				requirePeers(t, pc.tool)
				for _, remote := range pc.files {
					if testing.Short() && remote == "big33m" {
						continue
					}
					fetchWith(t, nil, pc, host, ts.addr.Port(), remote, peerFileSizes[remote], sums[remote])
					info := ts.info(t)
					if !info.Completed || info.Bytes != int64(peerFileSizes[remote]) {
						t.Fatalf("%s: report %+v", remote, info)
					}
					if info.WindowSize != pc.window {
						t.Errorf("%s: windowsize %d, want %d", remote, info.WindowSize, pc.window)
					}
				}
			})
		}
	}
}

func TestInteropErrors(t *testing.T) {
	requirePeers(t, "tftp", "atftp", "curl")
	ts := startServer(t, "udp4", nil)
	port := strconv.Itoa(int(ts.addr.Port()))
	for _, argv := range [][]string{
		{"atftp", "-g", "-r", "../etc/passwd", "-l", filepath.Join(t.TempDir(), "x"), "127.0.0.1", port},
		{"curl", "-sS", "-o", filepath.Join(t.TempDir(), "x"), "tftp://127.0.0.1:" + port + "/missing"},
	} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err == nil {
			t.Errorf("%v succeeded:\n%s", argv, out)
		}
		if info := ts.info(t); info.Completed || info.Err == nil {
			t.Errorf("%v: report %+v", argv, info)
		}
	}
	out, _ := exec.Command("tftp", "-m", "binary", "127.0.0.1", port, "-c", "put", "/etc/hostname", "hostname").CombinedOutput()
	if info := ts.info(t); !info.Write || info.Completed {
		t.Errorf("tftp put: report %+v\n%s", info, out)
	}
	fmt.Fprint(testWriter{t}, string(out))
}
