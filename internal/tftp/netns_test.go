package tftp

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// netnsPair is two network namespaces joined by a veth pair the test
// creates and removes: srv has 192.0.2.1 and 2001:db8::1, cli has
// 192.0.2.2 and 2001:db8::2.
type netnsPair struct {
	srv, cli       string
	srvDev, cliDev string
	lossBy         string // "netem" or "nftables"
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

func newNetnsPair(t *testing.T) *netnsPair {
	t.Helper()
	requireRoot(t)
	requirePeers(t, "ip", "tc")
	id := strconv.Itoa(os.Getpid())
	n := &netnsPair{srv: "kstftp" + id + "s", cli: "kstftp" + id + "c", srvDev: "ksv" + id + "s", cliDev: "ksv" + id + "c"}
	for _, ns := range []string{n.srv, n.cli} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	}
	run(t, "ip", "link", "add", n.srvDev, "netns", n.srv, "type", "veth", "peer", "name", n.cliDev, "netns", n.cli)
	for _, side := range []struct{ ns, dev, v4, v6 string }{
		{n.srv, n.srvDev, "192.0.2.1/24", "2001:db8::1/64"},
		{n.cli, n.cliDev, "192.0.2.2/24", "2001:db8::2/64"},
	} {
		run(t, "ip", "-n", side.ns, "addr", "add", side.v4, "dev", side.dev)
		run(t, "ip", "-n", side.ns, "addr", "add", side.v6, "dev", side.dev, "nodad")
		run(t, "ip", "-n", side.ns, "link", "set", side.dev, "up")
	}
	return n
}

// startHelperServer runs this test binary as a TFTP server inside ns (see
// TestMain) and returns once it listens.
func startHelperServer(t *testing.T, ns, root, listen string) *bytes.Buffer {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+listen, "KICKSTAND_TFTP_HELPER_ROOT="+root)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() || testing.Verbose() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	ready := make(chan bool, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		ok := s.Scan() && strings.HasPrefix(s.Text(), "ready")
		ready <- ok
		for s.Scan() {
		}
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("helper server did not start:\n%s", stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("helper server did not start:\n%s", stderr.String())
	}
	return &stderr.Buffer
}

type lockedBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

// addLoss drops percent% of the packets leaving each end of the veth. It
// uses tc netem; kernels built without sch_netem (such as some CI VMs) get
// the same effect from an nftables egress hook on the veth dropping a random
// numgen share.
func (n *netnsPair) addLoss(t *testing.T, percent int) {
	t.Helper()
	ends := []struct{ ns, dev string }{{n.srv, n.srvDev}, {n.cli, n.cliDev}}
	err := exec.Command("ip", "netns", "exec", n.srv, "tc", "qdisc", "add", "dev", n.srvDev, "root", "netem", "loss", fmt.Sprintf("%d%%", percent)).Run()
	if err == nil {
		n.lossBy = "netem"
		run(t, "ip", "netns", "exec", n.cli, "tc", "qdisc", "add", "dev", n.cliDev, "root", "netem", "loss", fmt.Sprintf("%d%%", percent))
		return
	}
	requirePeers(t, "nft")
	n.lossBy = "nftables"
	for _, end := range ends {
		rules := fmt.Sprintf(`table netdev kstloss {
	chain egress {
		type filter hook egress device %q priority 0; policy accept;
		numgen random mod 100 < %d counter drop
	}
}
`, end.dev, percent)
		cmd := exec.Command("ip", "netns", "exec", end.ns, "nft", "-f", "-")
		cmd.Stdin = strings.NewReader(rules)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("nft: %v\n%s", err, out)
		}
	}
}

// dropped counts the packets the loss rules dropped on both ends.
func (n *netnsPair) dropped(t *testing.T) int {
	t.Helper()
	total := 0
	for _, end := range []struct{ ns, dev string }{{n.srv, n.srvDev}, {n.cli, n.cliDev}} {
		var out string
		re := regexp.MustCompile(`dropped (\d+)`)
		if n.lossBy == "netem" {
			out = run(t, "ip", "netns", "exec", end.ns, "tc", "-s", "qdisc", "show", "dev", end.dev)
		} else {
			out = run(t, "ip", "netns", "exec", end.ns, "nft", "list", "table", "netdev", "kstloss")
			re = regexp.MustCompile(`counter packets (\d+)`)
		}
		if m := re.FindStringSubmatch(out); m != nil {
			d, _ := strconv.Atoi(m[1])
			total += d
		}
	}
	return total
}

// TestPacketLoss drops 10% of packets in each direction on the veth and
// checks every real client still gets every byte, over IPv4 and IPv6.
func TestPacketLoss(t *testing.T) {
	requirePeers(t, "tftp", "atftp", "curl")
	n := newNetnsPair(t)
	n.addLoss(t, 10)
	root := t.TempDir()
	sums := map[string]string{}
	sizes := map[string]int{"empty": 0, "loss256k": 256<<10 + 77, "lossexact": 1468 * 16 * 6}
	for name, size := range sizes {
		data := randomBytes(size, byte(len(name)))
		if err := os.WriteFile(root+"/"+name, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sums[name] = sha(data)
	}
	startHelperServer(t, n.srv, root, ":69")
	prefix := []string{"ip", "netns", "exec", n.cli}
	for _, pc := range peerClients() {
		if pc.name == "atftp-ws16-512" || pc.name == "curl-512" {
			continue // the 33 MiB cases belong to the loopback test
		}
		for _, host := range []string{"192.0.2.1", "2001:db8::1"} {
			t.Run(pc.name+"/"+host, func(t *testing.T) {
				for _, remote := range []string{"empty", "loss256k", "lossexact"} {
					fetchWith(t, prefix, pc, host, 69, remote, sizes[remote], sums[remote])
				}
			})
		}
	}
	dropped := n.dropped(t)
	if dropped == 0 {
		t.Fatal("nothing was dropped: the loss test did not test loss")
	}
	t.Logf("%s dropped %d packets", n.lossBy, dropped)
}
