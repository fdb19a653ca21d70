package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/diagnose"
	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/vminstall"
)

func newVMCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "vm", Short: "Install kvm and xen hosts as virtual machines"}
	var o vminstall.Options
	var print, virt bool
	install := &cobra.Command{
		Use:   "install HOST",
		Short: "Install a kvm or xen host as a VM with its distro kernel and kickstart",
		Long: "Install a host whose platform is kvm or xen as a virtual machine. The guest boots the\n" +
			"distro's kernel and initrd with the kernel arguments the host would get over PXE (its\n" +
			"static network in its release's syntax) and fetches its kickstart, rewritten for vda or\n" +
			"xvda, through its build token. KVM guests run under QEMU directly (TCG unless --accel kvm)\n" +
			"or with --virt-install; Xen guests are printed as an xl config and a virt-install line.\n" +
			"A host not in install state is put there, as `host build` does, unless --print.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			host := args[0]
			var in *server.Instance
			var err error
			if print {
				in, err = openPreview(ctx, g)
			} else {
				in, err = server.Open(ctx, g.config, server.Options{DataDir: g.data, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
			}
			if err != nil {
				return err
			}
			defer in.Close()
			guest, err := vminstall.Prepare(ctx, in, host, !print)
			if err != nil {
				return err
			}
			if o.WorkDir == "" {
				data := g.data
				if data == "" || data == "-" {
					data = in.Config().Abs(in.Config().Server.DataDir)
				}
				o.WorkDir = filepath.Join(data, "vms", host)
			}
			var plans []*vminstall.Plan
			switch {
			case guest.Platform == kickstart.PlatformXen && !virt:
				xl, err := vminstall.Xen(guest, o)
				if err != nil {
					return err
				}
				vi, err := vminstall.VirtInstall(guest, o)
				if err != nil {
					return err
				}
				plans = append(plans, xl, vi)
			case virt:
				vi, err := vminstall.VirtInstall(guest, o)
				if err != nil {
					return err
				}
				plans = append(plans, vi)
			default:
				q, err := vminstall.QEMU(guest, o)
				if err != nil {
					return err
				}
				plans = append(plans, q)
			}
			out := cmd.OutOrStdout()
			if print {
				if guest.Preview {
					fmt.Fprintf(out, "# preview: %s is not in install state, so the kickstart token is a placeholder;\n# `kickstand vm install %s` builds it first\n", host, host)
				}
				for i, p := range plans {
					if i > 0 {
						fmt.Fprintln(out, "\n# or, equivalently:")
					}
					fmt.Fprint(out, p.Script())
				}
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "vm install %s: %s\n", host, plans[0].Title)
			if err := vminstall.Run(ctx, plans[0], guest, in.Files, out, cmd.ErrOrStderr()); err != nil {
				return err
			}
			return reportBuilt(ctx, cmd.ErrOrStderr(), in, host)
		},
	}
	f := install.Flags()
	f.BoolVar(&print, "print", false, "print what would run, without running it")
	f.BoolVar(&virt, "virt-install", false, "use virt-install instead of QEMU (kvm) or xl (xen)")
	f.StringVar(&o.Disk, "disk", "", "disk image (none: no disk; default: DATA/vms/HOST/HOST.qcow2 for QEMU, the libvirt or Xen image directory otherwise)")
	f.IntVar(&o.DiskSizeGiB, "disk-size", 20, "size in GiB of a disk image that does not exist yet")
	f.StringVar(&o.Bridge, "bridge", "", "bridge to put the guest on (a tap is added for QEMU)")
	f.StringVar(&o.Tap, "tap", "", "existing tap for the guest (QEMU only)")
	f.IntVar(&o.MemoryMiB, "memory", 2048, "guest memory in MiB")
	f.StringVar(&o.Accel, "accel", "tcg", "QEMU accelerator: tcg, or kvm where /dev/kvm really works")
	f.DurationVar(&o.Timeout, "timeout", 0, "stop QEMU after this long (0: no limit)")
	cmd.AddCommand(install)
	return cmd
}

// reportBuilt waits briefly for the built callback to reach the timeline
// (serve records events in batches) and fails the command when the guest
// ended without reporting built, with the diagnosis of why.
func reportBuilt(ctx context.Context, w io.Writer, in *server.Instance, host string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		h, err := in.Store.Host(ctx, host)
		if err != nil {
			return err
		}
		d, err := in.Diagnose(ctx, h)
		if err != nil {
			return err
		}
		if d.Stage == diagnose.StageBuilt || d.Stage == diagnose.StageFailed || time.Now().After(deadline) {
			fmt.Fprintf(w, "vm install %s: stage %s (%d%%), state %s\n", host, d.Stage, d.Progress, h.State)
			if d.Stage == diagnose.StageBuilt {
				return nil
			}
			if d.Cause != "" {
				return fmt.Errorf("vm install %s: the guest stopped without reporting built: %s (%s)", host, d.Cause, d.Hint)
			}
			return fmt.Errorf("vm install %s: the guest stopped at stage %s without reporting built; see `kickstand host timeline %s`", host, d.Stage, host)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(300 * time.Millisecond):
		}
	}
}
