// Package bootfiles is the one namespace that TFTP and HTTP both serve: the
// rendered loader configs (pxelinux.cfg/*, grub.cfg-*), distro trees and the
// operator's files. Both protocols call Open, so a machine sees the same
// bytes whichever way it asks, and path checks live in one place.
package bootfiles

import (
	"encoding/hex"
	"net/netip"
	"path"
	"strings"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/inventory"
)

// ConfigName is a loader config request, parsed from the file name the
// loader asked for (REFERENCE §3 lookup orders).
type ConfigName struct {
	Firmware boot.Firmware // FirmwarePXELINUX or FirmwareGRUB
	MAC      string
	UUID     string
	// HexIP is an upper-case hex IPv4 prefix as PXELINUX and GRUB shorten
	// it (C000020A, C000020, ..., C); it must match the client's address.
	HexIP string
	IP    netip.Addr // GRUB's grub.cfg-<ipv6> form
	// Default is pxelinux.cfg/default or plain grub.cfg: identify the
	// client by its address, else show the menu.
	Default bool
	// Choose is the host picked from a GRUB or PXELINUX menu
	// (boot.ChoosePath).
	Choose string
}

// ParseConfigName recognises loader config names. Directory prefixes are
// ignored because GRUB builds differ in their $prefix.
func ParseConfigName(name string) (ConfigName, bool) {
	name = strings.TrimLeft(path.Clean("/"+name), "/")
	dir, base := path.Split(name)
	if strings.HasSuffix(dir, "pxelinux.cfg/") {
		c := ConfigName{Firmware: boot.FirmwarePXELINUX}
		if h, ok := strings.CutPrefix(base, "choose-"); ok && h != "" {
			c.Choose = h
			return c, true
		}
		return c, c.parseID(base, "default")
	}
	if base == "grub.cfg" {
		return ConfigName{Firmware: boot.FirmwareGRUB, Default: true}, true
	}
	if id, ok := strings.CutPrefix(base, "grub.cfg-"); ok {
		c := ConfigName{Firmware: boot.FirmwareGRUB}
		if h, ok := strings.CutPrefix(id, "choose-"); ok && h != "" {
			c.Choose = h
			return c, true
		}
		if a, err := netip.ParseAddr(id); err == nil && a.Is6() {
			c.IP = a
			return c, true
		}
		return c, c.parseID(id, "")
	}
	return ConfigName{}, false
}

func (c *ConfigName) parseID(id, def string) bool {
	switch {
	case id == "":
		return false
	case id == def:
		c.Default = true
		return true
	case len(id) == 36 && inventory.NormalUUID(id) == strings.ToLower(id) && strings.Count(id, "-") == 4:
		if _, err := hex.DecodeString(strings.ReplaceAll(id, "-", "")); err == nil {
			c.UUID = strings.ToLower(id)
			return true
		}
	case strings.HasPrefix(id, "01-") && len(id) == 20:
		if m := inventory.NormalMAC(strings.ReplaceAll(id[3:], "-", ":")); m != "" {
			c.MAC = m
			return true
		}
	case len(id) == 17:
		// Foreman also writes grub.cfg-<mac> with colons or dashes.
		if m := inventory.NormalMAC(strings.ReplaceAll(id, "-", ":")); m != "" {
			c.MAC = m
			return true
		}
	}
	if len(id) <= 8 && strings.ToUpper(id) == id {
		if _, err := hex.DecodeString(id + strings.Repeat("0", len(id)%2)); err == nil {
			c.HexIP = id
			return true
		}
	}
	return false
}

// MatchesClient reports whether a hex-IP name is a prefix of the client's
// IPv4 address, which is how PXELINUX walks its list.
func (c ConfigName) MatchesClient(client netip.Addr) bool {
	if c.HexIP == "" {
		return true
	}
	client = client.Unmap()
	if !client.Is4() {
		return false
	}
	b := client.As4()
	return strings.HasPrefix(strings.ToUpper(hex.EncodeToString(b[:])), c.HexIP)
}
