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
		p.Action = ActionNone
		p.explain("refused: the machine is %s firmware (arch %d) but distro %s is %s", cpu, f.Arch, t.Distro.Name, t.Distro.Arch)
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
	p.BootFile = bootFile(&p, f, in.Server)
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
	p.BootFile = bootFile(&p, f, in.Server)
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

// Loader file names by loader and CPU, as shipped by Debian's ipxe, grub and
// pxelinux packages. BIOS has no CPU in its facts.
var loaderFiles = map[string]map[string]string{
	inventory.LoaderIPXE:     {"bios": "undionly.kpxe", "x86_64": "ipxe.efi", "aarch64": "ipxe-arm64.efi", "i686": "ipxe-i386.efi"},
	inventory.LoaderGRUB:     {"x86_64": "grubx64.efi", "aarch64": "grubaa64.efi", "i686": "grubia32.efi"},
	inventory.LoaderPXELINUX: {"bios": "pxelinux.0"},
}

// bootFile is what DHCP hands out, so that each firmware gets something it
// can run, and iPXE gets a script rather than iPXE again.
func bootFile(p *Plan, f Facts, s Server) string {
	if p.Action == ActionNone || f.Firmware == FirmwareGRUB || f.Firmware == FirmwarePXELINUX {
		return "" // a loader asking for its config is already booted
	}
	base := s.URL(f.Family)
	if f.Firmware == FirmwareIPXE {
		if base == "" {
			return ""
		}
		q := url.Values{}
		if f.MAC != "" {
			q.Set("mac", f.MAC)
		}
		if f.Arch != ArchNone {
			q.Set("arch", strconv.Itoa(int(f.Arch)))
		}
		return base + "/boot.ipxe?" + q.Encode()
	}
	cpu := f.Arch.CPU()
	if f.Firmware == FirmwareBIOS || (cpu == "" && f.Firmware == FirmwareUnknown) {
		cpu = "bios"
	}
	loader := p.Loader
	name := loaderFiles[loader][cpu]
	if name == "" {
		// e.g. GRUB for BIOS or PXELINUX for UEFI: iPXE covers both.
		name = loaderFiles[inventory.LoaderIPXE][cpu]
		if name == "" {
			p.explain("no loader for %s firmware (arch %d)", cpu, f.Arch)
			return ""
		}
		p.explain("loader %s has no %s build: handing out iPXE (%s)", loader, cpu, name)
		p.Loader = inventory.LoaderIPXE
	}
	switch {
	case f.Firmware == FirmwareUEFIHTTP:
		if base == "" {
			return ""
		}
		return base + "/" + name
	case f.Family == 6:
		// EDK2 accepts only tftp://[addr]/file in DHCPv6 option 59.
		a := s.addr(6)
		if !a.IsValid() {
			a = f.ServerIP
		}
		if !a.IsValid() {
			return ""
		}
		return "tftp://[" + a.String() + "]/" + name
	}
	return name
}

func sameCPU(a, b string) bool {
	norm := func(s string) string {
		switch s {
		case "amd64", "x64", "x86-64":
			return "x86_64"
		case "arm64":
			return "aarch64"
		case "i386", "i586", "x86":
			return "i686"
		}
		return s
	}
	return norm(a) == norm(b)
}

func (p *Plan) explain(format string, args ...any) {
	p.Explain = append(p.Explain, fmt.Sprintf(format, args...))
}
