package vmtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Addresses of the lab's server side, on the bridge in the srv namespace. They come from the
// documentation ranges the project's network rule allows inside namespaces.
const (
	SrvIPv4     = "192.0.2.1"
	SrvIPv4CIDR = "192.0.2.1/24"
	SrvIPv6     = "2001:db8::1"
	SrvIPv6CIDR = "2001:db8::1/64"
	// DefaultBridge is the bridge name examples/netns-lab.yaml serves on.
	DefaultBridge = "ksbr0"
	// SrvVeth and CliVeth are the two ends of the veth joining the client namespace to the bridge.
	SrvVeth = "vs0"
	CliVeth = "vc0"
)

// Lab is a pair of network namespaces: "<name>-srv" holds the bridge that kickstand (or another
// server) and the QEMU VMs' taps sit on, and "<name>-cli" holds the far end of a veth for
// protocol clients such as dhclient, tftp or curl. Interface names are per namespace, so two labs
// may both have a bridge called ksbr0.
type Lab struct {
	Name   string
	Srv    string // server namespace: bridge, taps, servers, QEMU
	Cli    string // client namespace: CliVeth, no address unless a test adds one
	Bridge string
	IPv4   bool // SrvIPv4CIDR is on the bridge
	IPv6   bool // SrvIPv6CIDR is on the bridge

	mu     sync.Mutex
	nextID int
	closed bool
}

// LabOption changes how NewLab builds the lab.
type LabOption func(*Lab)

// WithBridge names the bridge (default DefaultBridge).
func WithBridge(name string) LabOption { return func(l *Lab) { l.Bridge = name } }

// IPv6Only leaves IPv4 off the bridge, for the IPv6-only installs of seed 000.
func IPv6Only() LabOption { return func(l *Lab) { l.IPv4 = false } }

// NoIPv6 leaves the IPv6 address off the bridge.
func NoIPv6() LabOption { return func(l *Lab) { l.IPv6 = false } }

var (
	labNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,19}$`)
	ifNameRE  = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,15}$`)
)

// NewLab creates the lab's namespaces. Namespaces left behind by a crashed run under the same
// name are removed first, so give each test its own name (short: it prefixes namespace names).
// Callers must Close the lab; t.Cleanup(func() { lab.Close() }) is the usual way.
func NewLab(ctx context.Context, name string, opts ...LabOption) (*Lab, error) {
	if !labNameRE.MatchString(name) {
		return nil, fmt.Errorf("lab %q: name must be 1-20 of [a-z0-9-]", name)
	}
	name = NSPrefix() + name
	l := &Lab{Name: name, Srv: name + "-srv", Cli: name + "-cli", Bridge: DefaultBridge, IPv4: true, IPv6: true}
	for _, o := range opts {
		o(l)
	}
	if !ifNameRE.MatchString(l.Bridge) {
		return nil, fmt.Errorf("lab %s: bad bridge name %q", name, l.Bridge)
	}
	for _, ns := range []string{l.Srv, l.Cli} {
		if err := removeNetns(ctx, ns); err != nil {
			return nil, fmt.Errorf("lab %s: removing leftover: %w", name, err)
		}
	}
	steps := [][]string{
		{"netns", "add", l.Srv},
		{"netns", "add", l.Cli},
		{"-n", l.Srv, "link", "set", "lo", "up"},
		{"-n", l.Cli, "link", "set", "lo", "up"},
		// Multicast snooping could hide RAs, NS and DHCPv6 from ports that sent no MLD report yet.
		{"-n", l.Srv, "link", "add", l.Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
		{"-n", l.Srv, "link", "add", SrvVeth, "type", "veth", "peer", "name", CliVeth, "netns", l.Cli},
		{"-n", l.Srv, "link", "set", SrvVeth, "master", l.Bridge},
		{"-n", l.Srv, "link", "set", SrvVeth, "up"},
		{"-n", l.Cli, "link", "set", CliVeth, "up"},
	}
	if l.IPv4 {
		steps = append(steps, []string{"-n", l.Srv, "addr", "add", SrvIPv4CIDR, "dev", l.Bridge})
	}
	if l.IPv6 {
		steps = append(steps, []string{"-n", l.Srv, "addr", "add", SrvIPv6CIDR, "dev", l.Bridge, "nodad"})
	}
	steps = append(steps, []string{"-n", l.Srv, "link", "set", l.Bridge, "up"})
	for i, step := range steps {
		if err := runIP(ctx, step...); err != nil {
			l.Close()
			return nil, fmt.Errorf("lab %s: %w", name, err)
		}
		// DAD would delay every address a test adds by a second or more; turn it off as soon as
		// the namespaces exist, before any interface gets an address.
		if i == 1 {
			for _, ns := range []string{l.Srv, l.Cli} {
				if err := l.Run(ctx, ns, "sysctl", "-qw", "net.ipv6.conf.all.accept_dad=0",
					"net.ipv6.conf.default.accept_dad=0"); err != nil {
					l.Close()
					return nil, fmt.Errorf("lab %s: %w", name, err)
				}
			}
		}
	}
	return l, nil
}

// NSPrefix is put in front of every namespace a test creates, from
// $KICKSTAND_NS_PREFIX (at most 8 of [a-z0-9]). Two test runs on one machine
// (two checkouts) with different prefixes never remove each other's labs.
func NSPrefix() string {
	p := os.Getenv("KICKSTAND_NS_PREFIX")
	if !nsPrefixRE.MatchString(p) {
		return ""
	}
	return p
}

var nsPrefixRE = regexp.MustCompile(`^[a-z0-9]{1,8}$`)

func runIP(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// nsName accepts "srv"/"cli" as shorthands for the lab's own namespaces.
func (l *Lab) nsName(ns string) string {
	switch ns {
	case "srv":
		return l.Srv
	case "cli":
		return l.Cli
	}
	return ns
}

// Cmd returns a command that runs argv inside namespace ns (l.Srv, l.Cli, or "srv"/"cli"). `ip
// netns exec` execs argv, so the process is argv itself and killing it needs no process group.
func (l *Lab) Cmd(ctx context.Context, ns string, argv ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", l.nsName(ns)}, argv...)...)
}

// Run runs argv inside ns and returns its output in the error when it fails.
func (l *Lab) Run(ctx context.Context, ns string, argv ...string) error {
	out, err := l.Cmd(ctx, ns, argv...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %s: %w: %s", l.nsName(ns), strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Output runs argv inside ns and returns its standard output.
func (l *Lab) Output(ctx context.Context, ns string, argv ...string) (string, error) {
	cmd := l.Cmd(ctx, ns, argv...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %s: %w: %s", l.nsName(ns), strings.Join(argv, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// AddTap creates a tap in the srv namespace, attached to the bridge and up, for one QEMU VM.
func (l *Lab) AddTap(ctx context.Context, name string) error {
	if !ifNameRE.MatchString(name) {
		return fmt.Errorf("lab %s: bad tap name %q (max 15 chars)", l.Name, name)
	}
	for _, step := range [][]string{
		{"-n", l.Srv, "tuntap", "add", "dev", name, "mode", "tap"},
		{"-n", l.Srv, "link", "set", name, "master", l.Bridge},
		{"-n", l.Srv, "link", "set", name, "up"},
	} {
		if err := runIP(ctx, step...); err != nil {
			return fmt.Errorf("lab %s: tap %s: %w", l.Name, name, err)
		}
	}
	return nil
}

// NewTap adds a tap with a name unique in this lab and returns the name.
func (l *Lab) NewTap(ctx context.Context) (string, error) {
	l.mu.Lock()
	l.nextID++
	name := "kstap" + strconv.Itoa(l.nextID)
	l.mu.Unlock()
	return name, l.AddTap(ctx, name)
}

// DelLink removes an interface from the srv namespace.
func (l *Lab) DelLink(ctx context.Context, name string) error {
	return runIP(ctx, "-n", l.Srv, "link", "del", name)
}

// Close kills every process still running in the lab's namespaces (servers, QEMU) and removes the
// namespaces, which removes the bridge, veth and taps with them. It may be called more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, ns := range []string{l.Cli, l.Srv} {
		if err := removeNetns(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeNetns kills the namespace's processes and deletes it; a missing namespace is fine.
func removeNetns(ctx context.Context, ns string) error {
	if _, err := os.Stat("/run/netns/" + ns); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		pids := netnsPids(ctx, ns)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, sig)
		}
		// Give them a moment to exit, so that the namespace really goes away with its devices.
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) && len(netnsPids(ctx, ns)) > 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := runIP(ctx, "netns", "del", ns); err != nil {
		return fmt.Errorf("netns %s: %w", ns, err)
	}
	return nil
}

// netnsPids lists the processes in ns, never this process: a thread of ours may sit in the
// namespace for a moment (InNetns) and /proc/<pid>/ns/net can show it.
func netnsPids(ctx context.Context, ns string) []int {
	out, err := exec.CommandContext(ctx, "ip", "netns", "pids", ns).Output()
	if err != nil {
		return nil
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids
}

// InNetns runs fn on an OS thread that has joined namespace ns. Sockets fn opens stay in that
// namespace after fn returns, which lets a test serve HTTP or DHCP inside the lab from its own
// process. fn must not start goroutines that expect to be in ns.
func InNetns(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread is unlocked again only if it is back in its original namespace; otherwise it
		// stays locked and Go discards it when this goroutine ends.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("netns %s: %w", ns, err)
			return
		}
		defer target.Close()
		if err := setns(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("netns %s: setns: %w", ns, err)
			return
		}
		fnErr := fn()
		if err := setns(orig); err == nil {
			runtime.UnlockOSThread()
		}
		errc <- fnErr
	}()
	return <-errc
}

func setns(f *os.File) error {
	_, _, e := syscall.RawSyscall(sysSetns, f.Fd(), syscall.CLONE_NEWNET, 0)
	if e != 0 {
		return e
	}
	return nil
}

// Listen opens a listener inside namespace ns (for example l.Srv and "192.0.2.1:8080").
func (l *Lab) Listen(ns, network, addr string) (net.Listener, error) {
	var ln net.Listener
	err := InNetns(l.nsName(ns), func() error {
		var err error
		ln, err = net.Listen(network, addr)
		return err
	})
	return ln, err
}

// ListenPacket opens a packet socket inside namespace ns.
func (l *Lab) ListenPacket(ns, network, addr string) (net.PacketConn, error) {
	var pc net.PacketConn
	err := InNetns(l.nsName(ns), func() error {
		var err error
		pc, err = net.ListenPacket(network, addr)
		return err
	})
	return pc, err
}
