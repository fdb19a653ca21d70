// Package boot answers the one question every protocol asks: what does this
// machine boot now? DHCP, TFTP and HTTP parse their requests into Facts and
// call Booter.BootSpec; none of them decides anything on its own, so the
// answer is the same whichever path a machine takes (pixiecore's model).
//
// Decide is pure and table-tested; Booter only gathers its inputs.
package boot

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Action is what a machine is told to do.
type Action string

const (
	ActionInstall Action = "install" // boot the installer
	ActionLocal   Action = "local"   // boot the local disk
	ActionMenu    Action = "menu"    // show the menu
	ActionNone    Action = "none"    // unknown or refused: no boot options at all
	// ActionDiscover: an unknown machine reports itself from iPXE and
	// waits to be assigned (menu.unknown: discover). GRUB and PXELINUX
	// chain into iPXE first where the firmware allows.
	ActionDiscover Action = "discover"
)

// Plan is the answer. Paths are server-relative ("distros/x/vmlinuz") and
// are served over TFTP and HTTP alike; URLs are absolute.
type Plan struct {
	Action   Action
	Host     string // the matched host, if any
	Firmware Firmware
	Loader   string // ipxe, grub or pxelinux
	// BootFile is what DHCP hands out: a TFTP path (v4), or a full
	// tftp:// or http:// URL (DHCPv6, UEFI HTTP boot, iPXE). Empty means
	// "send no boot options".
	BootFile     string
	BaseURL      string // http://server:port for the installer's network
	BootURL      string // http://server:port for the loader's network
	Kernel       string
	Initrds      []string
	Cmdline      string
	KickstartURL string
	Release      string
	// Fixes are seed 000's IPv6 races considered for this install.
	Fixes       []Fix
	Menu        []MenuEntry
	MenuTitle   string
	MenuTimeout int
	// Explain says, in words, why the plan is what it is.
	Explain []string
	// Refusal says why a known host gets nothing (ActionNone), for the
	// timeline's DHCP event: a distro for another CPU, a loader the
	// profile insists on that the firmware cannot run.
	Refusal string
}

// MenuEntry is one choice on the boot menu: a host's install. It carries
// no kernel line and no token: choosing is a request back to kickstand
// (ChooseIPXE, ChooseConfig), which binds the machine to the host and only
// then answers with the install.
type MenuEntry struct {
	Label string
	Host  string
}

// ChoosePath is the loader config name that chooses host from the menu,
// per loader; iPXE asks for boot.ipxe?host= instead.
func ChoosePath(firmware Firmware, host string) string {
	if firmware == FirmwarePXELINUX {
		return "pxelinux.cfg/choose-" + host
	}
	return "grub.cfg-choose-" + host
}

// Target is a host with everything needed to install it.
type Target struct {
	Record  *inventory.HostRecord
	Profile *inventory.Profile
	Distro  *inventory.Distro
}

// Server is how clients reach kickstand.
type Server struct {
	V4, V6 netip.Addr
	Port   int
}

// URL is the HTTP base URL for a network family, or "" when kickstand does
// not know its own address on that family.
func (s Server) URL(family int) string {
	a := s.V4
	if family == 6 {
		a = s.V6
	}
	if !a.IsValid() {
		return ""
	}
	hp := a.String()
	if family == 6 {
		hp = "[" + hp + "]"
	}
	if s.Port != 80 && s.Port != 0 {
		hp += ":" + strconv.Itoa(s.Port)
	}
	return "http://" + hp
}

func (s Server) addr(family int) netip.Addr {
	if family == 6 {
		return s.V6
	}
	return s.V4
}

// Inputs is everything Decide needs besides the facts.
type Inputs struct {
	Target    *Target // nil for an unknown machine
	Menu      inventory.Menu
	MenuItems []Target // hosts offered on the menu
	Server    Server
	Now       time.Time
	// Extra kernel arguments per host, appended by later stages
	// (overlay initrds, syslog); keyed by host name.
	ExtraInitrds []string
	ExtraArgs    []string
	// SyslogPort, when not 0, sends the installer's logs to kickstand
	// (inst.syslog=, or syslog= for EL5/6).
	SyslogPort int
	// RouteWait bounds how long the race-#1 and race-#3 fixes wait for an
	// IPv6 default route (default 30 s).
	RouteWait time.Duration
	// Proof is how the machine was identified, for the explanation.
	Proof Proof
}

// Decide is the boot decision. It is pure: same facts and inputs, same plan.
func Decide(f Facts, in Inputs) Plan {
	p := Plan{Firmware: f.Firmware, BootURL: in.Server.URL(f.Family)}
	t := in.Target
	if t == nil {
		who := f.MAC
		if who == "" {
			who = f.ClientIP.String()
		}
		if f.ClaimedMAC != "" && f.ClaimedMAC != f.MAC {
			p.explain("the client says it is %s; that is not proof of identity (a static address or a lease is)", f.ClaimedMAC)
		}
		if in.Menu.Unknown == inventory.MenuDiscover {
			return discoverPlan(p, f, in, who)
		}
		if in.Menu.Unknown != "menu" {
			p.Action = ActionNone
			p.explain("unknown machine %s and menu.unknown is %q: no boot options", who, in.Menu.Unknown)
			return p
		}
		p.explain("unknown machine %s: showing the menu", who)
		return menuPlan(p, f, in)
	}
	r := t.Record
	if in.Proof != "" {
		p.explain("machine identified as host %s by %s", r.Name, in.Proof)
	}
	p.Host = r.Name
	p.Loader = t.Profile.Loader
	p.Release = t.Distro.Release
	if cpu := f.Arch.CPU(); cpu != "" && t.Distro.Arch != "" && !sameCPU(cpu, t.Distro.Arch) {
		p.refuse("the machine is %s firmware (arch %d) but distro %s is %s: give host %s a profile whose distro is %s", cpu, f.Arch, t.Distro.Name, t.Distro.Arch, r.Name, cpu)
		return p
	}
	switch r.State {
	case inventory.StateLocal:
		p.Action = ActionLocal
		p.explain("host %s is in state local: booting the local disk", r.Name)
	case inventory.StateMenu:
		p.explain("host %s is in state menu", r.Name)
		return menuPlan(p, f, in)
	case inventory.StateInstall:
		if !r.TokenValid(in.Now) {
			p.Action = ActionLocal
			p.explain("host %s is in state install but its build token expired at %s: booting the local disk; run `kickstand host build %s` to install", r.Name, r.TokenExpires.UTC().Format(time.RFC3339), r.Name)
			break
		}
		p.Action = ActionInstall
		p.explain("host %s is in state install (token valid until %s)", r.Name, r.TokenExpires.UTC().Format(time.RFC3339))
		fillInstall(&p, f, in, *t)
	default:
		p.Action = ActionLocal
		p.explain("host %s has unknown state %q: booting the local disk", r.Name, r.State)
	}
	p.BootFile = bootFile(&p, f, in.Server, t)
	return p
}

func menuPlan(p Plan, f Facts, in Inputs) Plan {
	p.Action = ActionMenu
	p.Loader = inventory.LoaderIPXE
	if p.Firmware == FirmwareGRUB {
		p.Loader = inventory.LoaderGRUB
	}
	if p.Firmware == FirmwarePXELINUX {
		p.Loader = inventory.LoaderPXELINUX
	}
	p.MenuTitle, p.MenuTimeout = in.Menu.Title, in.Menu.Timeout
	for _, t := range in.MenuItems {
		if !t.Record.TokenValid(in.Now) {
			continue
		}
		if cpu := f.Arch.CPU(); cpu != "" && t.Distro.Arch != "" && !sameCPU(cpu, t.Distro.Arch) {
			continue
		}
		p.Menu = append(p.Menu, MenuEntry{
			Label: fmt.Sprintf("Install %s (%s, %s)", t.Record.Name, t.Profile.Name, t.Distro.Release),
			Host:  t.Record.Name,
		})
	}
	p.BootFile = bootFile(&p, f, in.Server, nil)
	return p
}

// discoverPlan sends an unknown machine to the waiting room: iPXE gets the
// discovery script; other firmware is handed iPXE, or chained into it.
func discoverPlan(p Plan, f Facts, in Inputs, who string) Plan {
	p.Action = ActionDiscover
	p.Loader = inventory.LoaderIPXE
	switch f.Firmware {
	case FirmwareGRUB:
		p.explain("unknown machine %s in GRUB and menu.unknown is discover: GRUB chains into iPXE (ipxe.efi) on UEFI; GRUB on BIOS cannot, and boots the local disk", who)
	case FirmwarePXELINUX:
		p.explain("unknown machine %s in PXELINUX and menu.unknown is discover: PXELINUX chains into iPXE (undionly.kpxe)", who)
	default:
		p.explain("unknown machine %s and menu.unknown is discover: it reports what its firmware knows and waits to be assigned", who)
	}
	if f.Arch.CPU() == "aarch64" {
		p.Action = ActionNone
		p.explain("there is no arm64 iPXE build, so an arm64 machine cannot report itself: add it to the inventory by MAC")
		return p
	}
	p.BootFile = bootFile(&p, f, in.Server, nil)
	return p
}

// fillInstall fills in the installer: kernel, initrds, cmdline, URLs.
func fillInstall(p *Plan, f Facts, in Inputs, t Target) {
	rel, err := inventory.ParseRelease(t.Distro.Release)
	if err != nil { // validated on load; keep going with dracut syntax
		rel = inventory.Release{Family: "rhel", Major: 9, Minor: -1}
	}
	h := &t.Record.Host
	fam := installFamily(h, t.Profile, f.Family)
	base := in.Server.URL(fam)
	p.BaseURL = base
	if base == "" {
		p.explain("kickstand does not know its own IPv%d address: set server.address_v%d", fam, fam)
	}
	dir := "distros/" + t.Distro.Name + "/"
	p.Kernel = dir + t.Distro.Kernel
	p.Initrds = nil
	for _, i := range t.Distro.Initrds {
		p.Initrds = append(p.Initrds, dir+i)
	}
	p.Initrds = append(p.Initrds, in.ExtraInitrds...)
	wait := in.RouteWait
	if wait <= 0 {
		wait = 30 * time.Second
	}
	extra := append([]string(nil), in.ExtraArgs...)
	if a := in.Server.addr(fam); in.SyslogPort != 0 && a.IsValid() {
		hp := a.String()
		if fam == 6 {
			hp = "[" + hp + "]"
		}
		arg := "inst.syslog="
		if !rel.Dracut() {
			arg = "syslog="
		}
		extra = append(extra, fmt.Sprintf("%s%s:%d", arg, hp, in.SyslogPort))
	}
	if t.Profile.Fixes == "off" {
		p.explain("seed-000 IPv6 fixes are off for profile %s", t.Profile.Name)
	} else {
		p.Fixes = seedFixes(rel, h, fam, wait, base)
	}
	for _, f := range p.Fixes {
		if !f.Applied {
			p.explain("fix not applied: %s", f.Why)
			continue
		}
		p.explain("fix applied: %s", f.Why)
		if f.Initrd != "" {
			p.Initrds = append(p.Initrds, f.Initrd)
		}
		if f.Arg != "" {
			extra = append(extra, f.Arg)
		}
	}
	p.KickstartURL = base + "/ks/" + url.PathEscape(t.Record.Token)
	stage2 := absURL(base, dir, t.Distro.Stage2)
	if t.Profile.Stage2 != "" {
		stage2 = absURL(base, dir, t.Profile.Stage2)
		p.explain("stage2 from profile %s: %s", t.Profile.Name, stage2)
	}
	repo := absURL(base, dir, t.Distro.Repo)
	if t.Distro.Repo == "" {
		repo = base + "/" + dir
	}
	mac := f.MAC
	if mac == "" && len(h.MACs) > 0 {
		mac = h.MACs[0]
	}
	explain := &p.Explain
	p.Cmdline = buildCmdline(cmdlineInput{
		Host: h, Profile: t.Profile, Release: rel, Family: fam,
		KSURL: p.KickstartURL, Stage2: stage2, Repo: repo, BootMAC: mac,
		Extra: extra, Explain: explain,
	})
	syntax := "dracut (EL7+)"
	if !rel.Dracut() {
		syntax = "legacy ks=/ksdevice= (EL5/6)"
	}
	p.explain("release %s: kernel arguments in %s syntax, installer network IPv%d", rel, syntax, fam)
}

// installFamily is the network the installer itself uses. A host with only
// IPv6, or whose profile says noipv4, installs over IPv6 even when its
// firmware came in over IPv4.
func installFamily(h *inventory.Host, prof *inventory.Profile, reqFamily int) int {
	_, has4 := h.Addr4()
	_, has6 := h.Addr6()
	noipv4 := slices.Contains(strings.Fields(prof.KernelArgs), "noipv4")
	switch {
	case has6 && (!has4 || noipv4):
		return 6
	case has4 && !has6:
		return 4
	case reqFamily == 6 && has6:
		return 6
	case has4:
		return 4
	}
	if reqFamily == 6 {
		return 6
	}
	return 4
}

// absURL turns a distro's stage2/repo setting into a URL: URLs are kept,
// relative paths are served from the distro's tree.
func absURL(base, dir, v string) string {
	switch {
	case v == "":
		return ""
	case strings.Contains(v, "://"):
		return v
	}
	return base + "/" + path.Clean(dir+v) + "/"
}

func sameCPU(a, b string) bool {
	if n := inventory.CPUName(b); n != "" {
		b = n
	}
	return inventory.CPUName(a) == b
}

// refuse turns the plan into "no boot options" and says why.
func (p *Plan) refuse(format string, args ...any) {
	p.Action = ActionNone
	p.Refusal = "refused: " + fmt.Sprintf(format, args...)
	p.Explain = append(p.Explain, p.Refusal)
}

func (p *Plan) explain(format string, args ...any) {
	p.Explain = append(p.Explain, fmt.Sprintf(format, args...))
}
