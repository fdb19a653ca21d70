package vmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Firmware selects how the VM starts: SeaBIOS with iPXE option ROMs, or OVMF (UEFI).
type Firmware string

const (
	BIOS Firmware = "bios"
	UEFI Firmware = "uefi"
	// UEFISecureBoot is OVMF with Secure Boot enforced: the secboot code image (SMM) and
	// variables holding Microsoft's keys, so only Microsoft-signed loaders (shim) run.
	UEFISecureBoot Firmware = "uefi-secureboot"
	// ARM64 is AAVMF, the aarch64 build of the same UEFI, on qemu-system-aarch64 -M virt.
	ARM64 Firmware = "arm64"
)

// OVMF and AAVMF images from Debian's ovmf and qemu-efi-aarch64 packages. The VARS image is
// copied per VM: it is writable and holds the boot order a UEFI machine remembers between boots.
const (
	OVMFCode        = "/usr/share/OVMF/OVMF_CODE_4M.fd"
	OVMFVars        = "/usr/share/OVMF/OVMF_VARS_4M.fd"
	OVMFSecBootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd"
	OVMFMSVars      = "/usr/share/OVMF/OVMF_VARS_4M.ms.fd"
	AAVMFCode       = "/usr/share/AAVMF/AAVMF_CODE.fd"
	AAVMFVars       = "/usr/share/AAVMF/AAVMF_VARS.fd"
)

// IsUEFI reports whether the firmware is one of the UEFI builds.
func (f Firmware) IsUEFI() bool { return f == UEFI || f == UEFISecureBoot || f == ARM64 }

// QEMU is the emulator binary for the firmware's machine.
func (f Firmware) QEMU() string {
	if f == ARM64 {
		return "qemu-system-aarch64"
	}
	return "qemu-system-x86_64"
}

// pflash is the firmware's code and variables-template images.
func (f Firmware) pflash() (code, vars string) {
	switch f {
	case UEFISecureBoot:
		return OVMFSecBootCode, OVMFMSVars
	case ARM64:
		return AAVMFCode, AAVMFVars
	}
	return OVMFCode, OVMFVars
}

// MarkerPrefix starts every line the test installer prints for tests (see testdata/installer/init).
const MarkerPrefix = "KSTEST: "

// Default MACs match examples/netns-lab.yaml's reservations (bios1 and uefi1).
const (
	DefaultBIOSMAC = "52:54:00:00:00:10"
	DefaultUEFIMAC = "52:54:00:00:01:10"
)

// VMOptions describes one QEMU run. The zero value plus Kernel/Initrd/Append is a BIOS VM with an
// e1000 NIC booting that kernel directly; leave Kernel empty to network-boot instead.
type VMOptions struct {
	Name     string   // names the files in Dir; default "vm"
	Dir      string   // serial log and UEFI vars; default a new temporary directory, kept
	Firmware Firmware // BIOS (default), UEFI, UEFISecureBoot or ARM64
	// NIC is the QEMU device model: default e1000 for BIOS, virtio-net-pci for UEFI.
	NIC string
	// NICROM is the NIC's option ROM: "" means QEMU's iPXE ROM for BIOS and none for UEFI (so
	// OVMF's own PXE/HTTP stack runs, per REAL-CLIENTS.md), "none" means none, else a file.
	NICROM string
	MAC    string // default DefaultBIOSMAC or DefaultUEFIMAC
	// Tap is an existing tap in the lab's srv namespace; empty makes one for this VM and
	// removes it when QEMU exits.
	Tap string
	// Kernel, Initrd and Append boot a kernel directly (-kernel/-initrd/-append) instead of
	// from the network.
	Kernel, Initrd, Append string
	// NoIPv4PXE and NoIPv6PXE switch off OVMF's (or AAVMF's) PXE over IPv4 or IPv6 (fw_cfg); with
	// both set, the firmware does UEFI HTTP boot.
	NoIPv4PXE, NoIPv6PXE bool
	MemoryMiB            int           // default 512 (BIOS) or 1024 (UEFI)
	Timeout              time.Duration // whole run, default 3 minutes; QEMU is killed after it
	// Reboot lets the guest reboot instead of ending QEMU (no -no-reboot), for boot-once tests
	// that watch a second network boot of the same machine.
	Reboot bool
	// Log, if set, also receives the serial console (t.Output() or os.Stdout for a demo).
	Log       io.Writer
	ExtraArgs []string
}

// VMResult is what a finished QEMU run left behind.
type VMResult struct {
	ExitCode   int // QEMU's exit status; 0 after the guest's poweroff with -no-reboot
	TimedOut   bool
	Elapsed    time.Duration
	Serial     string // the whole serial console, CR removed
	SerialPath string
	Stderr     string // QEMU's own messages
	Args       []string
}

// Markers returns the installer's marker lines with MarkerPrefix removed, in order.
func (r *VMResult) Markers() []string { return markers(r.Serial) }

// Find returns the first serial line matching re, or "".
func (r *VMResult) Find(re *regexp.Regexp) string { return findLine([]byte(r.Serial), 0, re, false) }

func markers(serial string) []string {
	var out []string
	for _, line := range strings.Split(serial, "\n") {
		if i := strings.Index(line, MarkerPrefix); i >= 0 {
			out = append(out, line[i+len(MarkerPrefix):])
		}
	}
	return out
}

// VM is a running QEMU. Its serial console is captured to a file and kept in memory for WaitFor.
type VM struct {
	Opts       VMOptions // with defaults filled in
	SerialPath string

	cmd     *exec.Cmd
	cancel  context.CancelFunc
	start   time.Time
	file    *os.File
	stderr  bytes.Buffer
	done    chan struct{}
	mu      sync.Mutex
	serial  []byte
	changed chan struct{} // closed and replaced whenever serial grows or QEMU exits
	exited  bool
	result  *VMResult
}

// StartVM starts QEMU inside the lab's srv namespace. TCG is always used: the nested KVM on the
// CI machines makes iPXE triple-fault and kernels hang (REAL-CLIENTS.md). QEMU runs under
// timeout(1) as well as the context, so a test binary that dies cannot leave it running.
func StartVM(ctx context.Context, lab *Lab, opts VMOptions) (*VM, error) {
	o, err := vmDefaults(opts)
	if err != nil {
		return nil, err
	}
	ownTap := o.Tap == ""
	if ownTap {
		if o.Tap, err = lab.NewTap(ctx); err != nil {
			return nil, fmt.Errorf("vm %s: %w", o.Name, err)
		}
	}
	args, err := qemuArgs(o)
	if err != nil {
		return nil, err
	}
	secs := strconv.Itoa(int(o.Timeout/time.Second) + 1)
	argv := append([]string{"timeout", "-k", "5", secs, o.Firmware.QEMU()}, args...)
	rctx, cancel := context.WithTimeout(ctx, o.Timeout+10*time.Second)
	vm := &VM{
		Opts:       o,
		SerialPath: filepath.Join(o.Dir, o.Name+".serial.log"),
		cancel:     cancel,
		done:       make(chan struct{}),
		changed:    make(chan struct{}),
	}
	if vm.file, err = os.Create(vm.SerialPath); err != nil {
		cancel()
		return nil, fmt.Errorf("vm %s: %w", o.Name, err)
	}
	vm.cmd = lab.Cmd(rctx, lab.Srv, argv...)
	vm.cmd.Stdout = vm
	vm.cmd.Stderr = &vm.stderr
	// timeout(1) puts itself and QEMU in a process group of their own; killing that group on
	// cancel takes QEMU down too.
	vm.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	vm.cmd.Cancel = func() error { return syscall.Kill(-vm.cmd.Process.Pid, syscall.SIGKILL) }
	vm.cmd.WaitDelay = 5 * time.Second
	vm.start = time.Now()
	if err := vm.cmd.Start(); err != nil {
		cancel()
		vm.file.Close()
		return nil, fmt.Errorf("vm %s: start qemu: %w", o.Name, err)
	}
	go vm.wait(rctx, lab, ownTap, argv)
	return vm, nil
}

func (vm *VM) wait(ctx context.Context, lab *Lab, ownTap bool, argv []string) {
	err := vm.cmd.Wait()
	res := &VMResult{Elapsed: time.Since(vm.start), SerialPath: vm.SerialPath, Args: argv}
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		res.ExitCode = exitErr.ExitCode()
	default:
		res.ExitCode = -1
	}
	// 124 and 137 are timeout(1)'s own "time ran out" statuses.
	res.TimedOut = ctx.Err() != nil || res.ExitCode == 124 || res.ExitCode == 137
	vm.cancel()
	if ownTap {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = lab.DelLink(cctx, vm.Opts.Tap)
		cancel()
	}
	vm.mu.Lock()
	vm.file.Close()
	res.Serial = string(vm.serial)
	res.Stderr = vm.stderr.String()
	vm.result = res
	vm.exited = true
	close(vm.changed)
	vm.mu.Unlock()
	close(vm.done)
}

// Write receives QEMU's stdout, which is the guest's serial console.
func (vm *VM) Write(p []byte) (int, error) {
	clean := bytes.ReplaceAll(p, []byte("\r"), nil)
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.exited {
		return len(p), nil
	}
	vm.serial = append(vm.serial, clean...)
	_, _ = vm.file.Write(clean)
	if vm.Opts.Log != nil {
		_, _ = vm.Opts.Log.Write(clean)
	}
	close(vm.changed)
	vm.changed = make(chan struct{})
	return len(p), nil
}

// Offset is the current length of the serial log; pass it to WaitForFrom to ignore what was
// printed before (a previous boot of the same VM, say).
func (vm *VM) Offset() int {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return len(vm.serial)
}

// Serial returns the serial console so far.
func (vm *VM) Serial() string {
	vm.mu.Lock()
	defer vm.mu.Unlock()
	return string(vm.serial)
}

// WaitFor waits until a serial line matches re and returns that line. It fails when ctx ends or
// QEMU exits first.
func (vm *VM) WaitFor(ctx context.Context, re *regexp.Regexp) (string, error) {
	return vm.WaitForFrom(ctx, 0, re)
}

// WaitForFrom is WaitFor looking only at the serial output from byte offset on.
func (vm *VM) WaitForFrom(ctx context.Context, offset int, re *regexp.Regexp) (string, error) {
	for {
		vm.mu.Lock()
		// Until QEMU exits, a match counts only once its line is complete, so callers never see
		// half a marker.
		line := findLine(vm.serial, offset, re, !vm.exited)
		changed, exited := vm.changed, vm.exited
		vm.mu.Unlock()
		if line != "" {
			return line, nil
		}
		if exited {
			return "", fmt.Errorf("vm %s: QEMU exited before /%s/ appeared (serial log %s)", vm.Opts.Name, re, vm.SerialPath)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", fmt.Errorf("vm %s: waiting for /%s/: %w (serial log %s)", vm.Opts.Name, re, ctx.Err(), vm.SerialPath)
		}
	}
}

// findLine returns the whole line around re's first match at or after offset; with complete set,
// a match on the last, unterminated line does not count yet.
func findLine(buf []byte, offset int, re *regexp.Regexp, complete bool) string {
	if offset > len(buf) {
		return ""
	}
	loc := re.FindIndex(buf[offset:])
	if loc == nil {
		return ""
	}
	start, end := offset+loc[0], offset+loc[1]
	if i := bytes.LastIndexByte(buf[:start], '\n'); i >= 0 {
		start = i + 1
	} else {
		start = 0
	}
	if i := bytes.IndexByte(buf[end:], '\n'); i >= 0 {
		end += i
	} else if complete {
		return ""
	} else {
		end = len(buf)
	}
	return string(buf[start:end])
}

// Wait blocks until QEMU has exited and returns the result.
func (vm *VM) Wait() *VMResult {
	<-vm.done
	return vm.result
}

// Kill stops QEMU now; Wait still returns its result.
func (vm *VM) Kill() { vm.cancel() }

// BootVM starts a VM and waits for it to end. The result is returned whenever QEMU ran, with an
// error too if it timed out or exited with a non-zero status.
func BootVM(ctx context.Context, lab *Lab, opts VMOptions) (*VMResult, error) {
	vm, err := StartVM(ctx, lab, opts)
	if err != nil {
		return nil, err
	}
	res := vm.Wait()
	switch {
	case res.TimedOut:
		return res, fmt.Errorf("vm %s: timed out after %s (serial log %s)", vm.Opts.Name, res.Elapsed.Round(time.Second), res.SerialPath)
	case res.ExitCode != 0:
		return res, fmt.Errorf("vm %s: qemu exit status %d: %s", vm.Opts.Name, res.ExitCode, strings.TrimSpace(res.Stderr))
	}
	return res, nil
}

func vmDefaults(o VMOptions) (VMOptions, error) {
	if o.Name == "" {
		o.Name = "vm"
	}
	if o.Firmware == "" {
		o.Firmware = BIOS
	}
	uefi := o.Firmware.IsUEFI()
	if !uefi && o.Firmware != BIOS {
		return o, fmt.Errorf("vm %s: unknown firmware %q", o.Name, o.Firmware)
	}
	if o.NIC == "" {
		o.NIC = "e1000"
		if uefi {
			o.NIC = "virtio-net-pci"
		}
	}
	if o.MAC == "" {
		o.MAC = DefaultBIOSMAC
		if uefi {
			o.MAC = DefaultUEFIMAC
		}
	}
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 512
		if uefi {
			o.MemoryMiB = 1024
		}
	}
	if o.Timeout == 0 {
		o.Timeout = 3 * time.Minute
	}
	if o.Dir == "" {
		dir, err := os.MkdirTemp("", "kickstand-vm-")
		if err != nil {
			return o, fmt.Errorf("vm %s: %w", o.Name, err)
		}
		o.Dir = dir
	}
	if o.Kernel == "" && (o.Initrd != "" || o.Append != "") {
		return o, fmt.Errorf("vm %s: Initrd/Append need Kernel", o.Name)
	}
	return o, nil
}

// qemuArgs builds the command line from REAL-CLIENTS.md's tested recipes.
func qemuArgs(o VMOptions) ([]string, error) {
	machine := "pc,accel=tcg"
	switch o.Firmware {
	case UEFI:
		machine = "q35,accel=tcg"
	case UEFISecureBoot:
		machine = "q35,smm=on,accel=tcg"
	case ARM64:
		machine = "virt,accel=tcg"
	}
	args := []string{
		"-name", o.Name, "-machine", machine, "-m", strconv.Itoa(o.MemoryMiB), "-smp", "1",
		"-nographic", "-monitor", "none", "-serial", "stdio",
	}
	switch o.Firmware {
	case UEFISecureBoot:
		// The variable store may only be written from SMM, or Secure Boot is not enforced.
		args = append(args, "-global", "driver=cfi.pflash01,property=secure,value=on")
	case ARM64:
		args = append(args, "-cpu", "cortex-a57")
	}
	if !o.Reboot {
		args = append(args, "-no-reboot")
	}
	if o.Firmware.IsUEFI() {
		code, template := o.Firmware.pflash()
		vars := filepath.Join(o.Dir, o.Name+"-vars.fd")
		// An existing copy is the same machine booting again: keep what it remembered.
		if _, err := os.Stat(vars); errors.Is(err, os.ErrNotExist) {
			if err := copyFile(template, vars); err != nil {
				return nil, fmt.Errorf("vm %s: UEFI vars: %w", o.Name, err)
			}
		}
		args = append(args,
			"-drive", "if=pflash,format=raw,unit=0,readonly=on,file="+code,
			"-drive", "if=pflash,format=raw,unit=1,file="+vars)
		if o.NoIPv4PXE {
			args = append(args, "-fw_cfg", "name=opt/org.tianocore/IPv4PXESupport,string=n")
		}
		if o.NoIPv6PXE {
			args = append(args, "-fw_cfg", "name=opt/org.tianocore/IPv6PXESupport,string=n")
		}
	}
	dev := fmt.Sprintf("%s,netdev=n0,mac=%s,bootindex=1", o.NIC, o.MAC)
	switch {
	case o.NICROM == "none", o.NICROM == "" && o.Firmware.IsUEFI():
		// Empty romfile: with iPXE's EFI ROM, OVMF's own network stack would not run.
		dev += ",romfile="
	case o.NICROM != "":
		dev += ",romfile=" + o.NICROM
	}
	args = append(args,
		"-netdev", "tap,id=n0,ifname="+o.Tap+",script=no,downscript=no",
		"-device", dev)
	if o.Kernel != "" {
		args = append(args, "-kernel", o.Kernel)
		if o.Initrd != "" {
			args = append(args, "-initrd", o.Initrd)
		}
		if o.Append != "" {
			args = append(args, "-append", o.Append)
		}
	} else if o.Firmware == BIOS {
		args = append(args, "-boot", "n")
	}
	return append(args, o.ExtraArgs...), nil
}

func copyFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, data, 0o644)
}

// Exited reports whether QEMU has exited.
func (vm *VM) Exited() bool {
	select {
	case <-vm.done:
		return true
	default:
		return false
	}
}
