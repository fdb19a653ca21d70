package dhcpengine

import (
	"encoding/hex"
	"strconv"
	"strings"

	"github.com/kickstand/kickstand/internal/boot"
)

// The parsing both families' facts need.

// ArchFromVendorClass reads the architecture from "PXEClient:Arch:00007:..."
// for clients that put it only there.
func ArchFromVendorClass(vc string) (boot.Arch, bool) {
	parts := strings.Split(vc, ":")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == "Arch" {
			n, err := strconv.ParseUint(parts[i+1], 10, 16)
			if err == nil && n != uint64(boot.ArchNone) {
				return boot.Arch(n), true
			}
		}
	}
	return 0, false
}

// Printable keeps vendor strings safe to log and compare: NULs that some
// ROMs pad with are cut, other control bytes dropped.
func Printable(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, string(b))
}

// EFIGUID renders a 16-byte GUID as sent by PXE firmware (DHCPv4 option
// 97, an EDK2 DUID-UUID) as the SMBIOS UUID operators put in the
// inventory: EFI keeps the first three fields little-endian, dmidecode and
// iPXE's ${uuid} print them swapped back. The all-zero and all-ones "not
// set" placeholders some firmware sends give "".
func EFIGUID(g []byte) string {
	if len(g) != 16 {
		return ""
	}
	allSame := true
	for _, b := range g {
		allSame = allSame && b == g[0]
	}
	if allSame && (g[0] == 0 || g[0] == 0xff) {
		return ""
	}
	b := []byte{g[3], g[2], g[1], g[0], g[5], g[4], g[7], g[6]}
	b = append(b, g[8:]...)
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
