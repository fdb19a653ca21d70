package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/vminstall"
)

func newTestBootCmd(g *globals) *cobra.Command {
	var o vminstall.TestBootOptions
	var quiet bool
	cmd := &cobra.Command{
		Use:   "test-boot HOST",
		Short: "Prove a host's whole network boot chain in a throwaway VM",
		Long: "Boot a throwaway QEMU VM with the host's MAC, UUID and firmware against a sandboxed\n" +
			"kickstand in a private network namespace, and follow the timeline until the kickstart and\n" +
			"what follows it (stage2, repository metadata, or the test installer's built callback) are\n" +
			"fetched. It prints the timeline and a verdict: PASS, or FAIL with the diagnosis. The\n" +
			"sandbox serves a snapshot of the host, its profile and distro (the real distro kernel and\n" +
			"initrd), so the real store is untouched apart from one testboot event with the verdict,\n" +
			"and the host keeps its state. Needs root. Exits 1 on FAIL.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			host := args[0]
			in, err := openPreview(ctx, g)
			if err != nil {
				return err
			}
			defer in.Close()
			exe, err := os.Executable()
			if err != nil {
				return fmt.Errorf("test-boot: %w", err)
			}
			o.Sandbox = []string{exe, "test-boot", "sandbox-serve"}
			if !quiet {
				o.Progress = cmd.ErrOrStderr()
			}
			res, err := vminstall.TestBoot(ctx, in, host, o)
			if err != nil {
				return err
			}
			rep := newTestBootReport(res)
			if err := g.emit(cmd.OutOrStdout(), rep, rep.writeText); err != nil {
				return err
			}
			// The verdict goes on the host's real timeline; nothing else
			// of the sandbox does.
			verdict := "fail"
			if res.Pass {
				verdict = "pass"
			}
			if err := in.Store.AppendEvents(ctx, []store.Event{{Host: host, At: time.Now(), Kind: "testboot." + verdict, Detail: res.Verdict,
				Data: map[string]any{"firmware": o.Firmware, "family": o.Family, "stage": res.Diagnosis.Stage, "elapsed_ms": res.Elapsed.Milliseconds()}}}); err != nil {
				fmt.Fprintln(cmd.ErrOrStderr(), "test-boot: verdict not recorded:", err)
			}
			if !res.Pass {
				return &kickstart.ExitError{Code: 1}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Firmware, "firmware", "bios", "firmware of the VM: bios (SeaBIOS, iPXE ROM) or uefi (OVMF)")
	f.IntVar(&o.Family, "family", 4, "network family the firmware boots over: 4 or 6 (6 needs uefi)")
	f.DurationVar(&o.Timeout, "timeout", 5*time.Minute, "give up after this long")
	f.IntVar(&o.MemoryMiB, "memory", 2048, "VM memory in MiB")
	f.BoolVar(&o.Keep, "keep", false, "keep the work directory (sandbox config, store, serial log)")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not print events as they happen")
	cmd.AddCommand(&cobra.Command{
		Use:    "sandbox-serve",
		Short:  "Run a test boot's sandboxed server (started by test-boot itself)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return vminstall.ServeSandbox(ctx, g.config, g.data, g.logger(cmd.ErrOrStderr()))
		},
	})
	return cmd
}

// testBootReport is what test-boot prints: the sandbox's timeline, the
// stage reached, notes, the VM's last console lines on a failure, and the
// verdict with its details.
type testBootReport struct {
	Host      string        `json:"host"`
	Pass      bool          `json:"pass"`
	Verdict   string        `json:"verdict"`
	Details   []string      `json:"details"`
	Stage     string        `json:"stage"`
	Progress  int           `json:"progress"`
	Notes     []string      `json:"notes"`
	Events    []store.Event `json:"events"` // the sandbox's timeline
	Serial    []string      `json:"serial,omitempty"`
	ElapsedMS int64         `json:"elapsed_ms"`
	WorkDir   string        `json:"work_dir,omitempty"` // kept with --keep
}

func newTestBootReport(res *vminstall.TestBootResult) testBootReport {
	r := testBootReport{Host: res.Host, Pass: res.Pass, Verdict: res.Verdict, Details: append([]string{}, res.Details...),
		Stage: res.Diagnosis.Stage, Progress: res.Diagnosis.Progress, Notes: append([]string{}, res.Notes...),
		Events: append([]store.Event{}, res.Events...), ElapsedMS: res.Elapsed.Milliseconds(), WorkDir: res.WorkDir}
	if !res.Pass {
		r.Serial = res.Serial
	}
	return r
}

func (r testBootReport) writeText(out io.Writer) error {
	fmt.Fprintf(out, "sandbox timeline of %s:\n", r.Host)
	tw := newTable(out)
	fmt.Fprintln(tw, "TIME\tEVENT\tDETAIL")
	for _, e := range r.Events {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", e.At.Format("15:04:05.000"), e.Kind, e.Detail)
	}
	tw.Flush()
	fmt.Fprintf(out, "\nstage: %s (%d%%)\n", r.Stage, r.Progress)
	for _, n := range r.Notes {
		fmt.Fprintln(out, "note: "+n)
	}
	if len(r.Serial) > 0 {
		fmt.Fprintln(out, "\nlast lines of the VM's console:")
		for _, l := range r.Serial {
			fmt.Fprintln(out, "  | "+l)
		}
	}
	if r.WorkDir != "" {
		fmt.Fprintln(out, "work directory kept: "+r.WorkDir)
	}
	fmt.Fprintln(out, "\n"+r.Verdict)
	for _, d := range r.Details {
		fmt.Fprintln(out, "  "+d)
	}
	return nil
}
