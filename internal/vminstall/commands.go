package vminstall

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/kickstart"
)

// Options are the operator's choices for one VM install.
type Options struct {
	MemoryMiB int // default 2048: Anaconda from EL7 on needs more than 1 GiB
	VCPUs     int // default 1
	// Disk is the guest's disk image; "none" means no disk (the project's
	// test installer needs none), "" the default for the tool.
	Disk        string
	DiskSizeGiB int // default 20, for a disk that does not exist yet
	// Bridge puts the guest on a bridge (kickstand makes a tap for QEMU);
	// Tap uses an existing tap (QEMU only).
	Bridge, Tap string
	// Accel is QEMU's accelerator: "tcg" (default) or "kvm". The build
	// machines' /dev/kvm is a nested software KVM on which kernels hang,
	// so TCG is the default (REAL-CLIENTS.md).
	Accel string
	// WorkDir holds what the install generates: the assembled initrd, the
	// xl config, the default QEMU disk.
	WorkDir string
	// Timeout bounds a QEMU run (timeout(1) wraps it); 0 means none.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.MemoryMiB == 0 {
		o.MemoryMiB = 2048
	}
	if o.VCPUs == 0 {
		o.VCPUs = 1
	}
	if o.DiskSizeGiB == 0 {
		o.DiskSizeGiB = 20
	}
	if o.Accel == "" {
		o.Accel = "tcg"
	}
	return o
}

// Step is one command of an install, in order.
type Step struct {
	Argv []string
	// IfMissing skips the step when this file exists: an existing disk
	// image is never recreated.
	IfMissing string
	// Cleanup steps run last, also after a failure.
	Cleanup bool
	// Main marks the step whose run is the install (QEMU, xl, virt-install).
	Main bool
}

// File is a file the plan writes before its steps run.
type File struct {
	Path string
	Data string
}

// Plan is what a VM install runs, shown as it is by --print.
type Plan struct {
	Title string
	Notes []string
	Files []File
	Steps []Step
	// Initrd is the one initrd QEMU or xl is given; when Assemble is set it
	// is written from the guest's initrds (concatenated cpio archives, which
	// the kernel unpacks in order) before the steps run.
	Initrd   string
	Assemble bool
	// PrintOnly plans cannot run here (Xen has no hypervisor on this host).
	PrintOnly bool
}

// initrdFor returns the single initrd file to boot and whether it must be
// assembled: one tree file is used in place, anything else is written.
func initrdFor(g *Guest, o Options) (string, bool) {
	if len(g.Initrds) == 1 && g.Initrds[0].Local != "" {
		return g.Initrds[0].Local, false
	}
	return filepath.Join(o.WorkDir, "initrd.img"), true
}

// tapName is a stable tap name for a host (15 characters at most).
func tapName(host string) string {
	h := sha256.Sum256([]byte(host))
	return fmt.Sprintf("ksvm-%x", h[:4])
}

// QEMU plans a KVM guest run by QEMU itself: direct kernel boot of the
// distro kernel and initrd with the plan's command line, a virtio disk and
// virtio-net. The guest does not reboot at the end of the install: QEMU
// exits, which is how kickstand knows the install is over.
func QEMU(g *Guest, o Options) (*Plan, error) {
	o = o.withDefaults()
	if g.Platform != kickstart.PlatformKVM {
		return nil, fmt.Errorf("vm install %s: QEMU runs kvm guests; platform %s is installed with xl or virt-install --paravirt", g.Name, g.Platform)
	}
	if (o.Bridge == "") == (o.Tap == "") {
		return nil, fmt.Errorf("vm install %s: give one of --bridge BR (kickstand adds a tap to it) or --tap TAP", g.Name)
	}
	if o.Accel != "tcg" && o.Accel != "kvm" {
		return nil, fmt.Errorf("vm install %s: --accel %q: want tcg or kvm", g.Name, o.Accel)
	}
	p := &Plan{Title: fmt.Sprintf("kvm guest %s (%s): QEMU, direct kernel boot", g.Name, g.Release)}
	p.Initrd, p.Assemble = initrdFor(g, o)
	disk := o.Disk
	if disk == "" {
		disk = filepath.Join(o.WorkDir, g.Name+".qcow2")
	}
	if disk != "none" {
		p.Steps = append(p.Steps, Step{Argv: []string{"qemu-img", "create", "-f", diskFormat(disk), disk, strconv.Itoa(o.DiskSizeGiB) + "G"}, IfMissing: disk})
	}
	tap := o.Tap
	if o.Bridge != "" {
		tap = tapName(g.Name)
		p.Steps = append(p.Steps,
			Step{Argv: []string{"ip", "tuntap", "add", "dev", tap, "mode", "tap"}},
			Step{Argv: []string{"ip", "link", "set", tap, "master", o.Bridge}},
			Step{Argv: []string{"ip", "link", "set", tap, "up"}},
		)
	}
	machine := "pc,accel=" + o.Accel
	argv := []string{"qemu-system-x86_64", "-name", "guest=" + g.Name, "-machine", machine,
		"-m", strconv.Itoa(o.MemoryMiB), "-smp", strconv.Itoa(o.VCPUs),
		"-nographic", "-no-reboot", "-monitor", "none", "-serial", "stdio"}
	if g.UUID != "" {
		argv = append(argv, "-uuid", g.UUID)
	}
	argv = append(argv, "-kernel", g.Kernel, "-initrd", p.Initrd, "-append", g.Cmdline)
	if disk != "none" {
		argv = append(argv, "-drive", "file="+disk+",if=virtio,format="+diskFormat(disk))
	}
	// romfile= keeps iPXE's ROM off the NIC: the kernel is booted directly.
	argv = append(argv, "-netdev", "tap,id=n0,ifname="+tap+",script=no,downscript=no",
		"-device", "virtio-net-pci,netdev=n0,mac="+g.MAC+",romfile=")
	if o.Timeout > 0 {
		secs := strconv.Itoa(int((o.Timeout + time.Second - 1) / time.Second))
		argv = append([]string{"timeout", "-k", "5", secs}, argv...)
	}
	p.Steps = append(p.Steps, Step{Argv: argv, Main: true})
	if o.Bridge != "" {
		p.Steps = append(p.Steps, Step{Argv: []string{"ip", "link", "del", tap}, Cleanup: true})
	}
	return p, nil
}

// VirtInstall plans the equivalent virt-install run: it fetches the kernel
// and initrd from kickstand's copy of the tree (--location) and passes the
// plan's command line as --extra-args. A Xen guest gets --paravirt and a
// xen disk bus, so the installer sees xvda as the kickstart says.
func VirtInstall(g *Guest, o Options) (*Plan, error) {
	o = o.withDefaults()
	if o.Tap != "" {
		return nil, errors.New("vm install: --tap works only with QEMU run directly; give virt-install a --bridge")
	}
	xen := g.Platform == kickstart.PlatformXen
	p := &Plan{Title: fmt.Sprintf("%s guest %s (%s): virt-install", g.Platform, g.Name, g.Release)}
	bridge, disk, bus := o.Bridge, o.Disk, "virtio"
	argv := []string{"virt-install"}
	if xen {
		argv = append(argv, "--connect", "xen:///system", "--paravirt")
		bus = "xen"
		if bridge == "" {
			bridge = "xenbr0"
		}
		if disk == "" {
			disk = "/var/lib/xen/images/" + g.Name + ".img"
		}
	} else {
		virtType := "kvm"
		if o.Accel == "tcg" {
			virtType = "qemu" // libvirt's name for TCG
		}
		argv = append(argv, "--connect", "qemu:///system", "--virt-type", virtType)
		if bridge == "" {
			bridge = "virbr0"
		}
		if disk == "" {
			disk = "/var/lib/libvirt/images/" + g.Name + ".qcow2"
		}
	}
	argv = append(argv, "--name", g.Name, "--memory", strconv.Itoa(o.MemoryMiB), "--vcpus", strconv.Itoa(o.VCPUs))
	if disk == "none" {
		argv = append(argv, "--disk", "none")
	} else {
		argv = append(argv, "--disk", fmt.Sprintf("path=%s,size=%d,format=%s,bus=%s", disk, o.DiskSizeGiB, diskFormat(disk), bus))
	}
	nw := "bridge=" + bridge + ",mac=" + g.MAC
	if !xen {
		nw += ",model=virtio"
	}
	argv = append(argv, "--network", nw, "--location", g.TreeURL, "--extra-args", g.Cmdline,
		"--os-variant", OSVariant(g.Release), "--graphics", "none", "--noreboot")
	if g.UUID != "" {
		argv = append(argv, "--uuid", g.UUID)
	}
	for _, i := range g.Initrds {
		if i.Local == "" {
			p.Notes = append(p.Notes, fmt.Sprintf("virt-install boots the tree's own initrd: kickstand's %s is not passed", i.Server))
		}
	}
	p.Steps = append(p.Steps, Step{Argv: argv, Main: true})
	if xen {
		p.PrintOnly = true
	}
	return p, nil
}

// Xen plans a Xen PV guest: an xl config with the distro kernel, ramdisk
// and the plan's command line as extra, a vif with the host's MAC and a
// disk seen as xvda. No Xen runs on kickstand's build machines, so a Xen
// plan is printed for the dom0, never run here.
func Xen(g *Guest, o Options) (*Plan, error) {
	o = o.withDefaults()
	if g.Platform != kickstart.PlatformXen {
		return nil, fmt.Errorf("vm install %s: platform %s is not xen", g.Name, g.Platform)
	}
	if o.Tap != "" {
		return nil, errors.New("vm install: --tap works only with QEMU; a Xen vif goes on a --bridge")
	}
	bridge, disk := o.Bridge, o.Disk
	if bridge == "" {
		bridge = "xenbr0"
	}
	if disk == "" {
		disk = "/var/lib/xen/images/" + g.Name + ".img"
	}
	p := &Plan{Title: fmt.Sprintf("xen guest %s (%s): xl, paravirtualised", g.Name, g.Release), PrintOnly: true}
	p.Initrd, p.Assemble = initrdFor(g, o)
	cfgPath := filepath.Join(o.WorkDir, g.Name+".xl.cfg")
	var b strings.Builder
	fmt.Fprintf(&b, "name = %s\n", xlQuote(g.Name))
	b.WriteString("type = \"pv\"\n")
	fmt.Fprintf(&b, "kernel = %s\n", xlQuote(g.Kernel))
	fmt.Fprintf(&b, "ramdisk = %s\n", xlQuote(p.Initrd))
	fmt.Fprintf(&b, "extra = %s\n", xlQuote(g.Cmdline))
	fmt.Fprintf(&b, "memory = %d\n", o.MemoryMiB)
	fmt.Fprintf(&b, "vcpus = %d\n", o.VCPUs)
	if g.UUID != "" {
		fmt.Fprintf(&b, "uuid = %s\n", xlQuote(g.UUID))
	}
	fmt.Fprintf(&b, "vif = [ %s ]\n", xlQuote("mac="+g.MAC+",bridge="+bridge))
	if disk != "none" {
		fmt.Fprintf(&b, "disk = [ %s ]\n", xlQuote("format="+diskFormat(disk)+",vdev=xvda,access=rw,target="+disk))
	}
	// The installer reboots at the end; the installed system must then
	// boot from its disk with pygrub, not this installer kernel again.
	b.WriteString("on_reboot = \"destroy\"\non_crash = \"destroy\"\n")
	p.Files = append(p.Files, File{Path: cfgPath, Data: b.String()})
	if disk != "none" {
		p.Steps = append(p.Steps, Step{Argv: []string{"truncate", "-s", strconv.Itoa(o.DiskSizeGiB) + "G", disk}, IfMissing: disk})
	}
	p.Steps = append(p.Steps, Step{Argv: []string{"xl", "create", "-c", cfgPath}, Main: true})
	return p, nil
}

func diskFormat(path string) string {
	if strings.HasSuffix(path, ".qcow2") {
		return "qcow2"
	}
	return "raw"
}

// xlQuote writes an xl config string: xl's parser takes C-like escapes in
// double quotes.
func xlQuote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

// Script is the plan as a shell script, which is what --print shows and
// what an operator can run by hand.
func (p *Plan) Script() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n", p.Title)
	for _, n := range p.Notes {
		fmt.Fprintf(&b, "# note: %s\n", n)
	}
	if p.PrintOnly {
		b.WriteString("# printed only: run this on the hypervisor host\n")
	}
	if p.Assemble {
		fmt.Fprintf(&b, "# %s is assembled by kickstand from the plan's initrds\n", p.Initrd)
	}
	for _, f := range p.Files {
		fmt.Fprintf(&b, "cat > %s <<'EOF'\n%sEOF\n", shellQuote(f.Path), f.Data)
	}
	var cleanup []string
	for _, s := range p.Steps {
		line := ShellJoin(s.Argv)
		if s.IfMissing != "" {
			line = fmt.Sprintf("[ -e %s ] || %s", shellQuote(s.IfMissing), line)
		}
		if s.Cleanup {
			cleanup = append(cleanup, line)
			continue
		}
		b.WriteString(line + "\n")
	}
	for _, l := range cleanup {
		b.WriteString(l + "\n")
	}
	return b.String()
}

// ShellJoin quotes argv for a POSIX shell, leaving plain words alone so the
// printed command stays readable.
func ShellJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shellQuote(a)
	}
	return strings.Join(q, " ")
}

func shellQuote(s string) string {
	if s == "" {
		return "''"
	}
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./:=,@%+", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
