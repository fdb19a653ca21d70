// Package vminstall installs inventory hosts as virtual machines and proves
// a host's boot chain in a throwaway VM before real hardware is touched.
//
// A VM install is seed 001 generalised: the guest boots the distro's own
// kernel and initrd with the kernel arguments the boot decision would give
// the host over PXE (so its static network is in its release's syntax), and
// fetches its kickstart through its build token, which kickstand rewrites
// for the platform's disk names (vda, xvda). Nothing here decides anything
// about the install itself; it only turns a boot.Plan into a QEMU, xl or
// virt-install command line.
package vminstall

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/install"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/kickstart"
	"github.com/kickstand/kickstand/internal/server"
)

// Guest is a host ready to be installed as a VM: what its boot decision
// says it boots, with the distro files resolved to local paths.
type Guest struct {
	Name     string
	Platform kickstart.Platform // PlatformKVM or PlatformXen
	MAC      string
	UUID     string
	Release  inventory.Release
	Distro   string
	// Kernel is the distro kernel as a local file.
	Kernel string
	// Initrds are the plan's initrds in order. Local is set for files of
	// the distro tree; kickstand's generated images (overlays) have only
	// their server path and are fetched from kickstand when the VM starts.
	Initrds []Initrd
	Cmdline string
	// KickstartURL is the plan's token URL; TreeURL is where kickstand
	// serves the distro tree (virt-install's --location).
	KickstartURL string
	TreeURL      string
	// Preview is set when the host was not in install state and the plan
	// was made with a placeholder token, for --print.
	Preview bool
	Explain []string
}

// Initrd is one initrd of the plan.
type Initrd struct {
	Server string // path kickstand serves it under
	Local  string // local file, "" for generated images
}

// Prepare makes the boot decision for a host as a VM. A host that is not in
// install state with a valid token is put there when build is set (a VM
// install is an install request); otherwise the plan is the lifecycle's
// preview as after a build, with a placeholder token, as `render
// --as-build` shows it.
func Prepare(ctx context.Context, in *server.Instance, host string, build bool) (*Guest, error) {
	t, err := in.Booter.TargetByName(ctx, host)
	if err != nil {
		return nil, fmt.Errorf("vm install %s: %w", host, err)
	}
	plat, err := platformOf(t)
	if err != nil {
		return nil, err
	}
	installing := t.Record.State == inventory.StateInstall && t.Record.TokenValid(time.Now())
	if !installing && build {
		if _, err := in.Install.Build(ctx, host, install.ByVMInstall); err != nil {
			return nil, fmt.Errorf("vm install %s: %w", host, err)
		}
		if t, err = in.Booter.TargetByName(ctx, host); err != nil {
			return nil, fmt.Errorf("vm install %s: %w", host, err)
		}
		installing = true
	}
	g := &Guest{Name: host, Platform: plat, UUID: t.Record.UUID, Distro: t.Distro.Name, Preview: !installing}
	if len(t.Record.MACs) > 0 {
		g.MAC = t.Record.MACs[0]
	} else {
		g.MAC = stableMAC(host, plat)
		g.Explain = append(g.Explain, fmt.Sprintf("host %s has no MAC in the inventory: the VM gets %s, derived from its name", host, g.MAC))
	}
	pv, err := in.Install.Preview(ctx, install.PreviewRequest{Host: host, AsBuild: !installing})
	if err != nil {
		return nil, fmt.Errorf("vm install %s: %w", host, err)
	}
	p := pv.Plan
	if p.Action != boot.ActionInstall {
		return nil, fmt.Errorf("vm install %s: the boot decision is %s, not install: %s", host, p.Action, strings.Join(p.Explain, "; "))
	}
	if p.BaseURL == "" {
		return nil, fmt.Errorf("vm install %s: kickstand does not know its own address, so the guest could not reach it: set server.address_v4 (or address_v6)", host)
	}
	g.Release, _ = inventory.ParseRelease(p.Release)
	cfg := in.Config()
	tree := cfg.Abs(t.Distro.Tree)
	dir := "distros/" + t.Distro.Name + "/"
	local := func(server string) string {
		rest, ok := strings.CutPrefix(server, dir)
		if !ok || t.Distro.Tree == "" {
			return ""
		}
		return filepath.Join(tree, filepath.FromSlash(rest))
	}
	if g.Kernel = local(p.Kernel); g.Kernel == "" {
		return nil, fmt.Errorf("vm install %s: distro %s has no tree, so its kernel is not a local file", host, t.Distro.Name)
	}
	for _, i := range p.Initrds {
		g.Initrds = append(g.Initrds, Initrd{Server: i, Local: local(i)})
	}
	g.Cmdline = p.Cmdline
	g.KickstartURL = p.KickstartURL
	g.TreeURL = p.BaseURL + "/" + dir
	g.Explain = append(g.Explain, p.Explain...)
	return g, nil
}

// platformOf is the host's platform as the kickstart rewriter sees it: the
// profile's overrides the host's, so the command line and the disk names
// in the kickstart always agree.
func platformOf(t *boot.Target) (kickstart.Platform, error) {
	s := t.Record.Platform
	if t.Profile.Platform != "" {
		s = t.Profile.Platform
	}
	p, err := kickstart.ParsePlatform(s)
	if err != nil {
		return "", fmt.Errorf("vm install %s: %w", t.Record.Name, err)
	}
	if p != kickstart.PlatformKVM && p != kickstart.PlatformXen {
		return "", fmt.Errorf("vm install %s: platform is %s: only kvm and xen hosts install as VMs (set platform: kvm or xen on the host or its profile)", t.Record.Name, p)
	}
	return p, nil
}

// stableMAC derives a locally administered MAC in the hypervisor's usual
// prefix, so a host without one gets the same address every time.
func stableMAC(name string, p kickstart.Platform) string {
	h := sha256.Sum256([]byte(name))
	prefix := "52:54:00"
	if p == kickstart.PlatformXen {
		prefix = "00:16:3e"
	}
	return fmt.Sprintf("%s:%02x:%02x:%02x", prefix, h[0]&0x7f, h[1], h[2])
}

// OSVariant is virt-install's --os-variant (an osinfo-db short id) for a
// release: EL rebuilds install like RHEL, and a release with no minor is
// osinfo's "-unknown", the newest minor it knows.
func OSVariant(r inventory.Release) string {
	switch {
	case r.Family == "fedora":
		return fmt.Sprintf("fedora%d", r.Major)
	case r.Family == "":
		return "linux2022"
	case r.Minor < 0:
		return fmt.Sprintf("rhel%d-unknown", r.Major)
	}
	return fmt.Sprintf("rhel%d.%d", r.Major, r.Minor)
}
