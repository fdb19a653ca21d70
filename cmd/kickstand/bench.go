package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/storm"
)

// newBenchCmd is `kickstand bench`: load generators for measuring a
// running kickstand (bench/storm/run.sh drives them in namespaces).
func newBenchCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Load generators: a boot storm against running kickstand servers"}
	cmd.AddCommand(newBenchStormCmd(g), newBenchInventoryCmd(), newBenchSinkCmd())
	return cmd
}

func newBenchStormCmd(g *globals) *cobra.Command {
	var (
		n, first, blksize, port, streams int
		targets                          []string
		spread, timeout, linkFor         time.Duration
		sink                             string
		wait                             time.Duration
		relayAll                         bool
		reboots, killAfter               int
		killPIDs                         []int
		rebootDelay, install             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "storm",
		Short: "Power on N simulated machines at once and follow each from DHCP to its built callback",
		Long: `Each machine has its own MAC (02:5b:00:..., machine i) and boots as a BIOS PXE
ROM chaining iPXE: DHCP through a relay (the local address), the loader over
TFTP, the iPXE script, kernel and initrd, the kickstart from the token URL, and
POST /cb/<token>/built. Machines are split round-robin over the targets,
or with --relay-all each machine's DHCP goes to every target and it boots
from the one that ACKed. --kill PID0,PID1 --kill-after N SIGKILLs, once N
machines are built, the server with the most installs in flight; --reboots
lets a machine whose boot failed start over from DHCP.
The servers' inventory must hold the machines as hosts in install state:
kickstand bench inventory writes it.`,
		Example: `  kickstand bench storm --n 1000 --target 198.18.0.1@198.18.0.2 --sink 198.18.0.1:5001`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg := storm.Config{Machines: n, First: first, Spread: spread, Timeout: timeout, TFTPBlksize: blksize,
				InstallTime: install, RelayAll: relayAll, Reboots: reboots, RebootDelay: rebootDelay, KillPIDs: killPIDs, KillAfter: killAfter}
			if len(killPIDs) > 0 && (killAfter <= 0 || killAfter > n) {
				return fmt.Errorf("--kill-after %d: want 1 to --n (%d)", killAfter, n)
			}
			for _, t := range targets {
				srv, loc, ok := strings.Cut(t, "@")
				s, err1 := netip.ParseAddr(srv)
				l, err2 := netip.ParseAddr(loc)
				if !ok || err1 != nil || err2 != nil || !s.Is4() || !l.Is4() {
					return fmt.Errorf("--target %q: want SERVER@LOCAL, two IPv4 addresses", t)
				}
				cfg.Targets = append(cfg.Targets, storm.Target{Server: s, Local: l, HTTPPort: port})
			}
			if len(cfg.Targets) == 0 {
				return fmt.Errorf("no --target")
			}
			if len(killPIDs) > len(cfg.Targets) {
				return fmt.Errorf("--kill names %d PIDs for %d targets", len(killPIDs), len(cfg.Targets))
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			wctx, cancel := context.WithTimeout(ctx, wait)
			err := storm.WaitReady(wctx, cfg.Targets)
			cancel()
			if err != nil {
				return err
			}
			if sink != "" {
				c, err := storm.MeasureLink(ctx, cfg.Targets[0].Local, sink, streams, linkFor)
				if err != nil {
					return err
				}
				cfg.LinkCapacity = c
			}
			rep, err := storm.Run(ctx, cfg)
			if err != nil {
				return err
			}
			if err := g.emit(cmd.OutOrStdout(), rep, func(w io.Writer) error { rep.WriteText(w); return nil }); err != nil {
				return err
			}
			if rep.Succeeded != rep.Machines {
				return fmt.Errorf("%d of %d machines failed", rep.Machines-rep.Succeeded, rep.Machines)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&n, "n", 1000, "machines")
	f.IntVar(&first, "first", 0, "index of the first machine (to split one inventory between simulators)")
	f.StringArrayVar(&targets, "target", nil, "SERVER@LOCAL: a kickstand server's address and this simulator's address on that link (repeatable)")
	f.IntVar(&port, "http-port", 8080, "the servers' HTTP port")
	f.DurationVar(&spread, "spread", 0, "power the machines on uniformly over this long (0: all at once)")
	f.DurationVar(&timeout, "timeout", 10*time.Minute, "bound on each machine's boot")
	f.IntVar(&blksize, "blksize", 1468, "TFTP block size asked for")
	f.StringVar(&sink, "sink", "", "HOST:PORT of `kickstand bench sink` beside the first server: measure the link first")
	f.IntVar(&streams, "link-streams", 8, "TCP streams for the link measurement")
	f.DurationVar(&linkFor, "link-for", 3*time.Second, "duration of the link measurement")
	f.DurationVar(&wait, "wait", time.Minute, "how long to wait for the servers' /healthz")
	f.DurationVar(&install, "install-time", 0, "how long each installer runs between its kickstart and its callback")
	f.BoolVar(&relayAll, "relay-all", false, "relay each machine's DHCP to every target (a relay with one helper address per server)")
	f.IntVar(&reboots, "reboots", 0, "times a machine whose boot failed starts over from DHCP")
	f.DurationVar(&rebootDelay, "reboot-delay", time.Second, "how long a machine takes to reboot")
	f.IntSliceVar(&killPIDs, "kill", nil, "the targets' server PIDs, in --target order (0: never): the busiest is SIGKILLed mid-storm")
	f.IntVar(&killAfter, "kill-after", 0, "kill once this many machines are built")
	return cmd
}

func newBenchInventoryCmd() *cobra.Command {
	var (
		n, perFile                 int
		addr, iface, data, storeTo string
		templates, tree, hostsDir  string
		kernel, initrd             int64
	)
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Write a storm server's config: N hosts in install state with MACs and reservations in 198.18.0.0/15",
		Long: `The config goes to standard output. The hosts go into it, or with --hosts-dir
into files of --per-file hosts in that directory (hosts-00000.yaml, ...), which
the config names as server.hosts_dir. The distro tree is created with small
files when it does not exist. DHCP is on only with --interface.`,
		Example: `  kickstand bench inventory --n 100000 > kickstand.yaml
  kickstand bench inventory --n 100000 --hosts-dir hosts.d --per-file 1000 > kickstand.yaml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := netip.ParseAddr(addr)
			if err != nil || !a.Is4() {
				return fmt.Errorf("--address %q: not an IPv4 address", addr)
			}
			if tree, err = filepath.Abs(tree); err != nil {
				return err
			}
			if kernel == 0 && initrd == 0 {
				if _, err := os.Stat(filepath.Join(tree, "vmlinuz")); err != nil {
					kernel, initrd = 64<<10, 64<<10 // serve checks that they exist
				}
			}
			if kernel > 0 || initrd > 0 {
				if err := storm.MakeTree(tree, kernel, initrd); err != nil {
					return err
				}
			}
			sc := storm.ServerConfig{Address: a, Interface: iface, DataDir: data, Store: storeTo, Templates: templates, Tree: tree}
			if hostsDir == "" {
				return storm.WriteInventory(cmd.OutOrStdout(), n, sc)
			}
			if perFile <= 0 {
				return fmt.Errorf("--per-file %d: want at least 1", perFile)
			}
			if sc.HostsDir, err = filepath.Abs(hostsDir); err != nil {
				return err
			}
			if err := os.MkdirAll(sc.HostsDir, 0o755); err != nil {
				return err
			}
			for from := 0; from < n; from += perFile {
				if err := writeHostFile(filepath.Join(sc.HostsDir, fmt.Sprintf("hosts-%05d.yaml", from/perFile)), from, min(from+perFile, n)); err != nil {
					return err
				}
			}
			return storm.WriteInventory(cmd.OutOrStdout(), 0, sc)
		},
	}
	f := cmd.Flags()
	f.IntVar(&n, "n", 1000, "hosts")
	f.StringVar(&addr, "address", "198.18.0.1", "the server's address")
	f.StringVar(&iface, "interface", "", "the interface DHCP serves (none: DHCP off)")
	f.StringVar(&data, "data-dir", "data", "server.data_dir")
	f.StringVar(&storeTo, "store-url", "", "server.store (a postgres:// URL shared by the storm's servers)")
	f.StringVar(&templates, "templates", "templates", "server.templates")
	f.StringVar(&tree, "tree", "tree", "the distro tree directory")
	f.Int64Var(&kernel, "kernel-size", 0, "create the tree with a kernel of this many bytes")
	f.Int64Var(&initrd, "initrd-size", 0, "and an initrd of this many bytes")
	f.StringVar(&hostsDir, "hosts-dir", "", "write the hosts into files in this directory instead of the config")
	f.IntVar(&perFile, "per-file", 1000, "hosts per file in --hosts-dir")
	return cmd
}

func writeHostFile(path string, from, to int) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = io.WriteString(f, "hosts:\n")
	if err == nil {
		err = storm.WriteHosts(f, from, to)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func newBenchSinkCmd() *cobra.Command {
	var listen string
	var maxFor time.Duration
	cmd := &cobra.Command{
		Use:   "sink",
		Short: "Send bulk data to whoever connects (the far end of the storm's link measurement)",
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, maxFor)
			defer cancel()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			return storm.Sink(ctx, ln, maxFor)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":5001", "address to listen on")
	cmd.Flags().DurationVar(&maxFor, "for", 10*time.Minute, "exit after this long")
	return cmd
}
