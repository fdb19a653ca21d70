package vminstall

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/kickstand/kickstand/internal/bootfiles"
)

// Opener reads a file kickstand serves (bootfiles.Files), for initrds that
// are generated rather than part of the tree.
type Opener interface {
	Open(ctx context.Context, r bootfiles.Request) (bootfiles.File, bootfiles.Kind, error)
}

// Run carries out a plan: it assembles the initrd if needed, writes the
// plan's files, then runs the steps in order with the main step's output
// (the guest's serial console for QEMU) on stdout. Cleanup steps always run.
func Run(ctx context.Context, p *Plan, g *Guest, files Opener, stdout, stderr io.Writer) error {
	if p.PrintOnly {
		return fmt.Errorf("vm install %s: %s cannot run on this host; use --print and run it where the hypervisor is", g.Name, p.Title)
	}
	if _, err := os.Stat(g.Kernel); err != nil {
		return fmt.Errorf("vm install %s: kernel: %w", g.Name, err)
	}
	if p.Assemble {
		if err := assembleInitrd(ctx, g, p.Initrd, files); err != nil {
			return err
		}
	}
	for _, f := range p.Files {
		if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
			return fmt.Errorf("vm install %s: %w", g.Name, err)
		}
		if err := os.WriteFile(f.Path, []byte(f.Data), 0o644); err != nil {
			return fmt.Errorf("vm install %s: %w", g.Name, err)
		}
	}
	var errs []error
	for _, s := range p.Steps {
		if s.Cleanup {
			continue
		}
		if s.IfMissing != "" {
			if _, err := os.Stat(s.IfMissing); err == nil {
				continue
			}
			if err := os.MkdirAll(filepath.Dir(s.IfMissing), 0o755); err != nil {
				errs = append(errs, fmt.Errorf("vm install %s: %w", g.Name, err))
				break
			}
		}
		if err := runStep(ctx, s, stdout, stderr); err != nil {
			errs = append(errs, fmt.Errorf("vm install %s: %w", g.Name, err))
			break
		}
	}
	for _, s := range p.Steps {
		if s.Cleanup {
			// The context may have ended (Ctrl-C): cleanup still runs.
			cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := runStep(cctx, s, stdout, stderr); err != nil {
				errs = append(errs, fmt.Errorf("vm install %s: cleanup: %w", g.Name, err))
			}
			cancel()
		}
	}
	return errors.Join(errs...)
}

func runStep(ctx context.Context, s Step, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	var errOut strings.Builder
	if s.Main {
		cmd.Stdout, cmd.Stderr = stdout, stderr
	} else {
		cmd.Stdout, cmd.Stderr = &errOut, &errOut
	}
	// QEMU must not outlive kickstand: killed with its process group on
	// cancel, and by the kernel if kickstand itself dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w %s", ShellJoin(s.Argv), err, strings.TrimSpace(errOut.String()))
	}
	return nil
}

// assembleInitrd concatenates the plan's initrds into one file: the kernel
// unpacks concatenated cpio archives in order, which is what a loader
// handed several initrds does too.
func assembleInitrd(ctx context.Context, g *Guest, dst string, files Opener) (err error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return fmt.Errorf("vm install %s: initrd: %w", g.Name, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".initrd-*")
	if err != nil {
		return fmt.Errorf("vm install %s: initrd: %w", g.Name, err)
	}
	defer func() {
		tmp.Close()
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	for _, i := range g.Initrds {
		var r io.ReadCloser
		if i.Local != "" {
			r, err = os.Open(i.Local)
		} else if files != nil {
			r, _, err = files.Open(ctx, bootfiles.Request{Name: i.Server})
		} else {
			err = errors.New("no way to fetch generated images")
		}
		if err != nil {
			return fmt.Errorf("vm install %s: initrd %s: %w", g.Name, i.Server, err)
		}
		_, err = io.Copy(tmp, r)
		r.Close()
		if err != nil {
			return fmt.Errorf("vm install %s: initrd %s: %w", g.Name, i.Server, err)
		}
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("vm install %s: initrd: %w", g.Name, err)
	}
	if err = os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("vm install %s: initrd: %w", g.Name, err)
	}
	return nil
}
