package boot

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

var now = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func target(state, loader, release string, h inventory.Host) *Target {
	if h.Name == "" {
		h.Name = "h1.example.com"
	}
	return &Target{
		Record: &inventory.HostRecord{Host: h, State: state, Token: "TOKEN", TokenExpires: now.Add(time.Hour)},
		Profile: &inventory.Profile{Name: "p", Distro: "d", Loader: loader,
			KernelArgs: "console=ttyS0,115200n8"},
		Distro: &inventory.Distro{Name: "d", Release: release, Arch: "x86_64", Kernel: "vmlinuz", Initrds: []string{"initrd.img"}},
	}
}

var srv = Server{V4: netip.MustParseAddr("192.0.2.1"), V6: netip.MustParseAddr("2001:db8::1"), Port: 8080}

func TestDecideBootFile(t *testing.T) {
	v4host := inventory.Host{MACs: []string{"52:54:00:00:00:10"}, IPv4: "192.0.2.10/24"}
	cases := []struct {
		name       string
		facts      Facts
		target     *Target
		unknown    string
		wantAction Action
		wantFile   string
		wantLoader string
	}{
		{"unknown ignored", Facts{Arch: ArchBIOS, Firmware: FirmwareBIOS, Family: 4}, nil, "ignore", ActionNone, "", ""},
		{"unknown gets menu via iPXE", Facts{Arch: ArchBIOS, Firmware: FirmwareBIOS, Family: 4}, nil, "menu", ActionMenu, "undionly.kpxe", "ipxe"},
		{"BIOS ipxe", Facts{Arch: ArchBIOS, Firmware: FirmwareBIOS, Family: 4}, target("install", "ipxe", "rhel8", v4host), "menu", ActionInstall, "undionly.kpxe", "ipxe"},
		{"BIOS pxelinux", Facts{Arch: ArchBIOS, Firmware: FirmwareBIOS, Family: 4}, target("install", "pxelinux", "rhel8", v4host), "menu", ActionInstall, "pxelinux.0", "pxelinux"},
		{"BIOS grub falls back to iPXE", Facts{Arch: ArchBIOS, Firmware: FirmwareBIOS, Family: 4}, target("install", "grub", "rhel8", v4host), "menu", ActionInstall, "undionly.kpxe", "ipxe"},
		{"UEFI x64 ipxe", Facts{Arch: ArchEFIX64, Firmware: FirmwareUEFI, Family: 4}, target("install", "ipxe", "rhel8", v4host), "menu", ActionInstall, "ipxe.efi", "ipxe"},
		{"UEFI BC grub", Facts{Arch: ArchEFIBC, Firmware: FirmwareUEFI, Family: 4}, target("install", "grub", "rhel8", v4host), "menu", ActionInstall, "grubx64.efi", "grub"},
		{"UEFI pxelinux falls back to iPXE", Facts{Arch: ArchEFIX64, Firmware: FirmwareUEFI, Family: 4}, target("install", "pxelinux", "rhel8", v4host), "menu", ActionInstall, "ipxe.efi", "ipxe"},
		{"UEFI HTTP gets a URL", Facts{Arch: ArchHTTPX64, Firmware: FirmwareUEFIHTTP, Family: 4}, target("install", "ipxe", "rhel8", v4host), "menu", ActionInstall, "http://192.0.2.1:8080/ipxe.efi", "ipxe"},
		{"iPXE gets the script, never iPXE again", Facts{Arch: ArchEFIX64, Firmware: FirmwareIPXE, Family: 4, MAC: "52:54:00:00:00:10"}, target("install", "ipxe", "rhel8", v4host), "menu", ActionInstall, "http://192.0.2.1:8080/boot.ipxe?arch=7&mac=52%3A54%3A00%3A00%3A00%3A10", "ipxe"},
		{"UEFI PXE over v6 gets tftp://[addr]", Facts{Arch: ArchEFIX64, Firmware: FirmwareUEFI, Family: 6}, target("install", "grub", "rhel8", v4host), "menu", ActionInstall, "tftp://[2001:db8::1]/grubx64.efi", "grub"},
		{"arm64 firmware, x86_64 distro: refused", Facts{Arch: ArchEFIARM64, Firmware: FirmwareUEFI, Family: 4}, target("install", "ipxe", "rhel8", v4host), "menu", ActionNone, "", "ipxe"},
		{"local state still boots iPXE to chain the disk", Facts{Arch: ArchBIOS, Firmware: FirmwareBIOS, Family: 4}, target("local", "ipxe", "rhel8", v4host), "menu", ActionLocal, "undionly.kpxe", "ipxe"},
		{"menu state", Facts{Arch: ArchEFIX64, Firmware: FirmwareUEFI, Family: 4}, target("menu", "grub", "rhel8", v4host), "ignore", ActionMenu, "ipxe.efi", "ipxe"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(tc.facts, Inputs{Target: tc.target, Menu: inventory.Menu{Unknown: tc.unknown}, Server: srv, Now: now})
			if p.Action != tc.wantAction || p.BootFile != tc.wantFile || p.Loader != tc.wantLoader {
				t.Errorf("got action %s file %q loader %q; want %s %q %q\nexplain: %v", p.Action, p.BootFile, p.Loader, tc.wantAction, tc.wantFile, tc.wantLoader, p.Explain)
			}
			if len(p.Explain) == 0 {
				t.Error("plan has no explanation")
			}
		})
	}
}

func TestDecideExpiredTokenBootsLocal(t *testing.T) {
	tg := target("install", "ipxe", "rhel8", inventory.Host{IPv4: "192.0.2.10/24"})
	tg.Record.TokenExpires = now.Add(-time.Second)
	p := Decide(Facts{Firmware: FirmwareIPXE, Family: 4}, Inputs{Target: tg, Server: srv, Now: now})
	if p.Action != ActionLocal || p.Kernel != "" || !strings.Contains(strings.Join(p.Explain, " "), "expired") {
		t.Fatalf("expired token: %+v", p)
	}
}

func TestDecideMenuOffersInstallingHosts(t *testing.T) {
	a := target("install", "ipxe", "rhel8", inventory.Host{Name: "a", IPv4: "192.0.2.10/24"})
	b := target("install", "ipxe", "rhel8", inventory.Host{Name: "b", IPv4: "192.0.2.11/24"})
	b.Record.TokenExpires = now.Add(-time.Hour) // expired: not offered
	p := Decide(Facts{Firmware: FirmwareIPXE, Family: 4}, Inputs{Menu: inventory.Menu{Unknown: "menu"}, MenuItems: []Target{*a, *b}, Server: srv, Now: now})
	if p.Action != ActionMenu || len(p.Menu) != 1 || p.Menu[0].Host != "a" {
		t.Fatalf("menu = %+v", p.Menu)
	}
	// The menu carries no token: choosing goes back to kickstand.
	if strings.Contains(fmt.Sprintf("%+v", p), "TOKEN") {
		t.Fatalf("menu plan carries a build token: %+v", p)
	}
}

func words(s string) []string { return strings.Fields(s) }

func TestCmdlineSeed000(t *testing.T) {
	tg := target("install", "ipxe", "centos7.2", inventory.Host{
		Name: "newbox.wann.net", IPv6: "2401:beef:11::31:0/64",
		Nameservers: []string{"2401:beef:11:a53", "2401:beef:11:b53"},
	})
	tg.Profile.KernelArgs = "noipv4 net.ifnames=0 biosdevname=0 inst.ssh"
	s := Server{V6: netip.MustParseAddr("2401:beef:20::20"), Port: 80}
	p := Decide(Facts{Firmware: FirmwareIPXE, Family: 4}, Inputs{Target: tg, Server: s, Now: now})
	got := words(p.Cmdline)
	for _, w := range words("noipv4 ip=[2401:beef:11::31:0]:::64:::none nameserver=2401:beef:11:a53 nameserver=2401:beef:11:b53 net.ifnames=0 biosdevname=0 inst.ssh inst.ks=http://[2401:beef:20::20]/ks/TOKEN") {
		if !slices.Contains(got, w) {
			t.Errorf("cmdline lacks %q: %s", w, p.Cmdline)
		}
	}
}

func TestCmdlineSyntaxPerRelease(t *testing.T) {
	h := inventory.Host{Name: "h", IPv4: "192.0.2.10/24", Gateway4: "192.0.2.1", Nameservers: []string{"192.0.2.53", "2001:db8::53"}, MACs: []string{"52:54:00:00:00:10"}}
	cases := []struct {
		release string
		want    []string
		never   []string
	}{
		{"rhel8", []string{"ip=192.0.2.10::192.0.2.1:255.255.255.0:h::none", "nameserver=192.0.2.53", "inst.ks=http://192.0.2.1:8080/ks/TOKEN", "inst.repo=http://192.0.2.1:8080/distros/d/"}, []string{"ks=", "ksdevice=", "netmask=", "dns="}},
		{"rhel6", []string{"ip=192.0.2.10", "netmask=255.255.255.0", "gateway=192.0.2.1", "dns=192.0.2.53", "ksdevice=52:54:00:00:00:10", "ks=http://192.0.2.1:8080/ks/TOKEN"}, []string{"inst.", "nameserver="}},
	}
	for _, tc := range cases {
		p := Decide(Facts{Firmware: FirmwareIPXE, Family: 4}, Inputs{Target: target("install", "ipxe", tc.release, h), Server: srv, Now: now})
		got := words(p.Cmdline)
		for _, w := range tc.want {
			if !slices.Contains(got, w) {
				t.Errorf("%s: cmdline lacks %q: %s", tc.release, w, p.Cmdline)
			}
		}
		for _, n := range tc.never {
			for _, w := range got {
				if strings.HasPrefix(w, n) {
					t.Errorf("%s: cmdline mixes syntaxes, has %q: %s", tc.release, w, p.Cmdline)
				}
			}
		}
	}
}

func TestCmdlineV6Gateway(t *testing.T) {
	h := inventory.Host{Name: "h6", IPv6: "2001:db8::10/64", Gateway6: "2001:db8::1", Interface: "eth0"}
	p := Decide(Facts{Firmware: FirmwareIPXE, Family: 6}, Inputs{Target: target("install", "ipxe", "rhel9", h), Server: srv, Now: now})
	if !slices.Contains(words(p.Cmdline), "ip=[2001:db8::10]::[2001:db8::1]:64:h6:eth0:none") || !strings.Contains(p.Cmdline, "inst.ks=http://[2001:db8::1]:8080/ks/TOKEN") {
		t.Errorf("cmdline = %s", p.Cmdline)
	}
}

func TestClassifyFirmware(t *testing.T) {
	cases := []struct {
		arch Arch
		uc   []string
		vc   string
		opt  bool
		want Firmware
	}{
		{ArchBIOS, nil, "PXEClient:Arch:00000:UNDI:002001", false, FirmwareBIOS},
		{ArchEFIX64, nil, "PXEClient:Arch:00007:UNDI:003016", false, FirmwareUEFI},
		{ArchHTTPX64, nil, "HTTPClient:Arch:00016:UNDI:003001", false, FirmwareUEFIHTTP},
		{ArchEFIX64, []string{"iPXE"}, "PXEClient:Arch:00007", false, FirmwareIPXE},
		{ArchBIOS, nil, "PXEClient", true, FirmwareIPXE},
		{ArchNone, nil, "", false, FirmwareUnknown},
	}
	for _, tc := range cases {
		if got := ClassifyFirmware(tc.arch, tc.uc, tc.vc, tc.opt); got != tc.want {
			t.Errorf("ClassifyFirmware(%d, %v, %q, %v) = %s, want %s", tc.arch, tc.uc, tc.vc, tc.opt, got, tc.want)
		}
	}
}

func TestProfileStage2Overrides(t *testing.T) {
	tg := target("install", "ipxe", "centos7.2", inventory.Host{IPv4: "192.0.2.10/24"})
	tg.Distro.Stage2 = "LiveOS-orig"
	tg.Profile.Stage2 = "7.x/7.2r5"
	p := Decide(Facts{Firmware: FirmwareIPXE, Family: 4}, Inputs{Target: tg, Server: srv, Now: now})
	if !strings.Contains(p.Cmdline, "inst.stage2=http://192.0.2.1:8080/distros/d/7.x/7.2r5/") {
		t.Errorf("cmdline = %s", p.Cmdline)
	}
}
