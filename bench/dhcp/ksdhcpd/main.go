// Command ksdhcpd runs kickstand's DHCPv4 server alone (config file, SQLite
// store in a directory), so the DHCP benchmark measures the DHCP server and
// its fsync'd group commit without HTTP, TFTP or the timeline beside it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/dhcp4"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

func main() {
	config := flag.String("config", "kickstand.yaml", "inventory file with a dhcp section")
	data := flag.String("data", "data", "store directory (SQLite)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile here")
	verbose := flag.Bool("v", false, "debug logging")
	flag.Parse()
	if err := run(*config, *data, *cpuprofile, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "ksdhcpd:", err)
		os.Exit(1)
	}
}

func run(config, data, cpuprofile string, verbose bool) error {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := inventory.Load(config)
	if err != nil {
		return err
	}
	st, err := store.OpenSQLite(ctx, data)
	if err != nil {
		return err
	}
	defer st.Close()
	current := func() *inventory.Config { return cfg }
	booter := boot.NewBooter(st, current)
	if _, err := install.New(install.Deps{Store: st, Booter: booter, Config: current, Log: log}).SyncFile(ctx, cfg); err != nil {
		return err
	}
	srv, err := dhcp4.New(dhcp4.Options{Config: current, Booter: booter, Store: st, Log: log})
	if err != nil {
		return err
	}
	// perfdhcp sends from random MACs at thousands a second: without this
	// the starvation limits (dhcp4.DefaultLimits) would cap the benchmark.
	srv.SetLimits(dhcp4.Limits{Off: true})
	if cpuprofile != "" {
		f, err := os.Create(cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		pprof.StartCPUProfile(f)
		defer pprof.StopCPUProfile()
	}
	go func() {
		<-srv.Ready()
		fmt.Println("ready")
	}()
	err = srv.Serve(ctx)
	s := srv.Stats()
	fmt.Printf("received %d dropped %d malformed %d replies %d naks %d batches %d lease-ops %d\n",
		s.Received, s.Dropped, s.Malformed, s.Replies, s.Naks, s.Batches, s.LeaseOps)
	return err
}
