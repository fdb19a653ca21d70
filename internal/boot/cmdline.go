package boot

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/kickstand/kickstand/internal/inventory"
)

// cmdlineInput is what the kernel command line is built from.
type cmdlineInput struct {
	Host     *inventory.Host
	Profile  *inventory.Profile
	Release  inventory.Release
	Family   int    // the installer's network family
	KSURL    string // kickstart URL
	Stage2   string // inst.stage2 URL, or ""
	Repo     string // inst.repo URL, used when there is no stage2
	BootMAC  string
	Extra    []string // words later stages append (overlays, syslog, ...)
	Explain  *[]string
	Fallback bool // no host: DHCP everywhere
}

// buildCmdline renders the installer's kernel arguments in the syntax of the
// target release. EL7+ and EL5/6 are never mixed: a bare EL6-style ip= makes
// dracut fail with "unknown value" (REFERENCE §4).
func buildCmdline(in cmdlineInput) string {
	var w []string
	if in.Release.Dracut() {
		w = dracutNet(in)
		w = append(w, strings.Fields(in.Profile.KernelArgs)...)
		if in.KSURL != "" {
			w = append(w, "inst.ks="+in.KSURL)
		}
		switch {
		case in.Stage2 != "":
			w = append(w, "inst.stage2="+in.Stage2)
		case in.Repo != "":
			w = append(w, "inst.repo="+in.Repo)
		}
	} else {
		w = legacyNet(in)
		w = append(w, strings.Fields(in.Profile.KernelArgs)...)
		if in.KSURL != "" {
			w = append(w, "ks="+in.KSURL)
		}
	}
	w = append(w, in.Extra...)
	return strings.Join(w, " ")
}

func dracutNet(in cmdlineInput) []string {
	h := in.Host
	if h == nil {
		return []string{"ip=dhcp"}
	}
	var w []string
	v4, has4 := h.Addr4()
	v6, has6 := h.Addr6()
	// dracut takes one ip= per interface; without a named interface a
	// second ip= is ambiguous, so a dual-stack host gets the family the
	// installer will use, and both when the interface is named.
	use4 := has4 && (in.Family == 4 || !has6 || h.Interface != "")
	use6 := has6 && (in.Family == 6 || !has4 || h.Interface != "")
	if use4 {
		mask := net.IP(net.CIDRMask(v4.Bits(), 32)).String()
		w = append(w, fmt.Sprintf("ip=%s::%s:%s:%s:%s:none", v4.Addr(), h.Gateway4, mask, h.Name, h.Interface))
	}
	if use6 {
		if h.Gateway6 != "" {
			w = append(w, fmt.Sprintf("ip=[%s]::[%s]:%d:%s:%s:none", v6.Addr(), h.Gateway6, v6.Bits(), h.Name, h.Interface))
		} else {
			// Seed 000's exact form. The default route must then come
			// from router advertisements, which races the kickstart
			// fetch (seed 000 race #1).
			w = append(w, fmt.Sprintf("ip=[%s]:::%d::%s:none", v6.Addr(), v6.Bits(), h.Interface))
		}
	}
	if !use4 && !use6 {
		if in.Family == 6 {
			w = append(w, "ip=dhcp6")
		} else {
			w = append(w, "ip=dhcp")
		}
	}
	for _, ns := range h.Nameservers {
		w = append(w, "nameserver="+ns)
	}
	return w
}

func legacyNet(in cmdlineInput) []string {
	h := in.Host
	dev := "bootif"
	if in.BootMAC != "" {
		dev = in.BootMAC
	}
	w := []string{"ksdevice=" + dev}
	if h == nil {
		return append(w, "ip=dhcp")
	}
	v4, ok := h.Addr4()
	if !ok {
		// Anaconda 13 cannot install over IPv6 only (seed 000).
		*in.Explain = append(*in.Explain, fmt.Sprintf("%s installs with legacy syntax and the host has no IPv4 address: using ip=dhcp, since EL5/6 cannot install over IPv6 alone", in.Release))
		return append(w, "ip=dhcp")
	}
	w = append(w, "ip="+v4.Addr().String(), "netmask="+net.IP(net.CIDRMask(v4.Bits(), 32)).String())
	if h.Gateway4 != "" {
		w = append(w, "gateway="+h.Gateway4)
	}
	var dns []string
	for _, ns := range h.Nameservers {
		if a, err := netip.ParseAddr(ns); err == nil && a.Is4() {
			dns = append(dns, ns)
		}
	}
	if len(dns) > 0 {
		w = append(w, "dns="+strings.Join(dns, ","))
	}
	return w
}
