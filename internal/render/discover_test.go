package render

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
)

func discoverPlan(fw boot.Firmware, arch boot.Arch) boot.Plan {
	in := boot.Inputs{Menu: inventory.Menu{Unknown: inventory.MenuDiscover}, Server: boot.Server{V4: netip.MustParseAddr("192.0.2.1"), Port: 8080}, Now: time.Now()}
	return boot.Decide(boot.Facts{Firmware: fw, Arch: arch, Family: 4, MAC: "52:54:00:00:07:10"}, in)
}

// The discovery script follows REAL-CLIENTS.md's facts about Debian's
// iPXE: a GET with a query (no params), chain --autofree, ${mac} never
// :uristring, and a loop that retries after a failed poll.
func TestDiscoveryScript(t *testing.T) {
	p := discoverPlan(boot.FirmwareIPXE, boot.ArchNone)
	if p.Action != boot.ActionDiscover {
		t.Fatalf("action %s", p.Action)
	}
	s := string(IPXE(p))
	for _, want := range []string{
		"chain --autofree http://192.0.2.1:8080/discover?mac=${mac}&uuid=${uuid}&manufacturer=${manufacturer:uristring}",
		"&serial=${serial:uristring}&asset=${asset:uristring}", "&platform=${platform}", " || goto kickstand_retry", "sleep 10", "goto kickstand_poll",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("script lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "mac:uristring") || strings.Contains(s, "params") {
		t.Errorf("script uses what Debian's iPXE lacks:\n%s", s)
	}
	w := string(IPXEWait(3200*time.Millisecond, "waiting; $evil"))
	if !strings.HasPrefix(w, "#!ipxe\n") || !strings.Contains(w, "sleep 3\nexit 0\n") || strings.Contains(w, "$evil") {
		t.Errorf("wait answer:\n%s", w)
	}
}

// A BIOS or UEFI machine is handed iPXE; GRUB (UEFI) and PXELINUX chain
// into it; arm64, with no iPXE build, gets nothing and is told why.
func TestDiscoveryChains(t *testing.T) {
	if p := discoverPlan(boot.FirmwareBIOS, boot.ArchBIOS); p.BootFile != "undionly.kpxe" {
		t.Errorf("BIOS gets %q", p.BootFile)
	}
	if p := discoverPlan(boot.FirmwareUEFI, boot.ArchEFIX64); p.BootFile != "ipxe.efi" {
		t.Errorf("UEFI gets %q", p.BootFile)
	}
	if g := string(GRUB(discoverPlan(boot.FirmwareGRUB, boot.ArchNone))); !strings.Contains(g, "chainloader /ipxe.efi") || !strings.Contains(g, `"$grub_platform" = "efi"`) {
		t.Errorf("GRUB config:\n%s", g)
	}
	if x := string(PXELINUX(discoverPlan(boot.FirmwarePXELINUX, boot.ArchNone))); !strings.Contains(x, "PXE /undionly.kpxe") {
		t.Errorf("PXELINUX config:\n%s", x)
	}
	if p := discoverPlan(boot.FirmwareUEFI, boot.ArchEFIARM64); p.Action != boot.ActionNone || !strings.Contains(strings.Join(p.Explain, " "), "no arm64 iPXE") {
		t.Errorf("arm64: %s %v", p.Action, p.Explain)
	}
}
