package boot

import (
	"fmt"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

// Fix is one of seed 000's four IPv6-only install races (REFERENCE §5),
// and whether and how kickstand works around it for this install. Each is
// applied only to the releases and networks that need it, so a RHEL 9 host
// with a known gateway gets none of the machinery an EL7.2 host needs.
type Fix struct {
	Race    int    // 1-4, as numbered in seed 000
	Applied bool   // false: listed to say why it is not needed
	Why     string // the reason, in words
	// What it adds to the install:
	Initrd string // a server path of an overlay initrd to append
	Arg    string // a kernel argument
	// KickstartPre asks the kickstart renderer for the accept_ra %pre loop.
	KickstartPre bool
}

// Paths of the images the fixes serve; internal/overlay builds their bytes.
const (
	// OverlayDir holds kickstand's generated images, served over HTTP and
	// TFTP like any other file.
	OverlayDir = "kickstand/"
)

// WaitRouteOverlay is the overlay initrd for race #1 with its bound.
func WaitRouteOverlay(wait time.Duration) string {
	return fmt.Sprintf("%soverlay/wait-v6-route-%ds.img", OverlayDir, int(wait/time.Second))
}

// EL7UpdatesImage is the Anaconda updates.img for races #2 and #3.
func EL7UpdatesImage(wait time.Duration) string {
	return fmt.Sprintf("%supdates/el7-v6-%ds.img", OverlayDir, int(wait/time.Second))
}

// seedFixes decides which seed-000 workarounds an install needs. fam is the
// installer's network family; the v4 case needs none of them.
func seedFixes(rel inventory.Release, h *inventory.Host, fam int, wait time.Duration, base string) []Fix {
	if fam != 6 || !rel.Dracut() {
		return nil
	}
	_, has4 := h.Addr4()
	gw := h.Gateway6 != ""
	el72 := rel.Family == "rhel" && rel.AtMost(7, 2)
	var out []Fix

	f1 := Fix{Race: 1}
	if gw {
		f1.Why = "race #1 (dracut fetches the kickstart before an RA default route exists): not needed, the gateway " + h.Gateway6 + " is in ip="
	} else {
		f1.Applied = true
		f1.Initrd = WaitRouteOverlay(wait)
		f1.Why = fmt.Sprintf("race #1 (dracut fetches the kickstart before an RA default route exists): appended overlay initrd %s, a dracut online hook that waits up to %s for `ip -6 route show default`", f1.Initrd, wait)
	}
	out = append(out, f1)

	f2 := Fix{Race: 2}
	switch {
	case !el72:
		f2.Why = fmt.Sprintf("race #2 (ifcfg with BOOTPROTO=static and an empty IPADDR): not needed, fixed in NetworkManager 1.0 (EL7.3+); release is %s", rel)
	case has4:
		f2.Why = "race #2 (ifcfg with BOOTPROTO=static and an empty IPADDR): not needed, the host has an IPv4 address"
	default:
		f2.Applied = true
		f2.Why = "race #2 (ifcfg with BOOTPROTO=static and an empty IPADDR): updates.img removes the BOOTPROTO line before Anaconda starts"
	}
	f3 := Fix{Race: 3}
	if el72 {
		f3.Applied = true
		f3.Why = fmt.Sprintf("race #3 (NetworkManager's reinit drops the route while .treeinfo downloads): updates.img waits up to %s for a default route before Anaconda starts", wait)
	} else {
		f3.Why = fmt.Sprintf("race #3 (NetworkManager's reinit drops the route while .treeinfo downloads): not needed, Anaconda retries .treeinfo from EL7.3; release is %s", rel)
	}
	if f2.Applied || f3.Applied {
		img := base + "/" + EL7UpdatesImage(wait)
		if f2.Applied {
			f2.Arg = "inst.updates=" + img
		} else {
			f3.Arg = "inst.updates=" + img
		}
	}
	out = append(out, f2, f3)

	f4 := Fix{Race: 4}
	if gw {
		f4.Why = "race #4 (NetworkManager sets accept_ra=0 for a static address without a gateway): not needed, the kickstart's network line carries --ipv6gateway"
	} else {
		f4.Applied = true
		f4.KickstartPre = true
		f4.Why = "race #4 (NetworkManager sets accept_ra=0 for a static address without a gateway): the kickstart gets seed 000's bounded %pre loop re-enabling accept_ra and accept_ra_defrtr (log: /tmp/networkmanager-hack.log); set gateway6 to avoid it"
	}
	return append(out, f4)
}
