// Command ksftpd serves a directory with kickstand's TFTP server alone, so
// the TFTP benchmark can run before (and independently of) the full binary.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/kickstand/kickstand/internal/tftp"
)

func main() {
	root := flag.String("root", ".", "directory to serve")
	listen := flag.String("listen", "127.0.0.1:6969", "UDP address to listen on")
	maxTransfers := flag.Int("max", 0, "maximum concurrent transfers (0: default)")
	verbose := flag.Bool("v", false, "debug logging")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "ksftpd:", err)
			os.Exit(1)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "ksftpd:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if err := run(*root, *listen, *maxTransfers, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "ksftpd:", err)
		os.Exit(1)
	}
}

func run(root, listen string, maxTransfers int, verbose bool) error {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	dir, err := tftp.NewDirOpener(root)
	if err != nil {
		return err
	}
	defer dir.Close()
	srv, err := tftp.New(tftp.Config{Opener: dir, Logger: log, MaxTransfers: maxTransfers})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	pc, err := net.ListenPacket("udp", listen)
	if err != nil {
		return err
	}
	defer pc.Close()
	fmt.Println("listening on", pc.LocalAddr())
	return srv.Serve(ctx, pc)
}
