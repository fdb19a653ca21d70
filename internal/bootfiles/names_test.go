package bootfiles

import (
	"net/netip"
	"testing"

	"github.com/kickstand/kickstand/internal/boot"
)

func TestParseConfigName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
		want ConfigName
	}{
		{"pxelinux.cfg/01-52-54-00-00-00-10", true, ConfigName{Firmware: boot.FirmwarePXELINUX, MAC: "52:54:00:00:00:10"}},
		{"/pxelinux.cfg/8C0F6D52-5B9E-4B71-9A3D-2F1E0C9B8A08", true, ConfigName{Firmware: boot.FirmwarePXELINUX, UUID: "8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08"}},
		{"pxelinux.cfg/C000020A", true, ConfigName{Firmware: boot.FirmwarePXELINUX, HexIP: "C000020A"}},
		{"pxelinux.cfg/C0", true, ConfigName{Firmware: boot.FirmwarePXELINUX, HexIP: "C0"}},
		{"pxelinux.cfg/C", true, ConfigName{Firmware: boot.FirmwarePXELINUX, HexIP: "C"}},
		{"pxelinux.cfg/default", true, ConfigName{Firmware: boot.FirmwarePXELINUX, Default: true}},
		{"pxelinux.cfg/c000020a", false, ConfigName{}},
		{"pxelinux.cfg/", false, ConfigName{}},
		{"grub.cfg", true, ConfigName{Firmware: boot.FirmwareGRUB, Default: true}},
		{"grub/grub.cfg-01-52-54-00-00-00-10", true, ConfigName{Firmware: boot.FirmwareGRUB, MAC: "52:54:00:00:00:10"}},
		{"EFI/BOOT/grub.cfg-52:54:00:00:00:10", true, ConfigName{Firmware: boot.FirmwareGRUB, MAC: "52:54:00:00:00:10"}},
		{"grub.cfg-C000020A", true, ConfigName{Firmware: boot.FirmwareGRUB, HexIP: "C000020A"}},
		{"grub.cfg-2001:db8::10", true, ConfigName{Firmware: boot.FirmwareGRUB, IP: netip.MustParseAddr("2001:db8::10")}},
		{"grub.cfg-bogus", false, ConfigName{}},
		{"vmlinuz", false, ConfigName{}},
	}
	for _, tc := range cases {
		got, ok := ParseConfigName(tc.name)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("ParseConfigName(%q) = %+v, %v; want %+v, %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestHexIPMatchesClient(t *testing.T) {
	c := netip.MustParseAddr("192.0.2.10")
	for _, hex := range []string{"C000020A", "C000020", "C0", "C"} {
		if !(ConfigName{HexIP: hex}).MatchesClient(c) {
			t.Errorf("%s should match %s", hex, c)
		}
	}
	if (ConfigName{HexIP: "C000020B"}).MatchesClient(c) {
		t.Error("C000020B matched 192.0.2.10")
	}
}

func TestCleanName(t *testing.T) {
	for in, want := range map[string]string{"/a/b": "a/b", "a//b/": "a/b", "./x": "x"} {
		if got, ok := CleanName(in); !ok || got != want {
			t.Errorf("CleanName(%q) = %q, %v", in, got, ok)
		}
	}
	for _, bad := range []string{"../etc/passwd", "a/../../b", "a/..", "x\x00y", `a\..\b`, "", "/", "."} {
		if got, ok := CleanName(bad); ok {
			t.Errorf("CleanName(%q) accepted as %q", bad, got)
		}
	}
}

func FuzzNames(f *testing.F) {
	for _, s := range []string{"pxelinux.cfg/01-52-54-00-00-00-10", "grub.cfg-C0", "grub.cfg-2001:db8::1", "distros/x/../../y", "pxelinux.cfg/default", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if c, ok := CleanName(name); ok {
			for _, seg := range splitSlash(c) {
				if seg == ".." || seg == "" {
					t.Fatalf("CleanName(%q) = %q has segment %q", name, c, seg)
				}
			}
		}
		if cn, ok := ParseConfigName(name); ok {
			if cn.Firmware != boot.FirmwareGRUB && cn.Firmware != boot.FirmwarePXELINUX {
				t.Fatalf("ParseConfigName(%q): firmware %q", name, cn.Firmware)
			}
			cn.MatchesClient(netip.MustParseAddr("192.0.2.1"))
		}
	})
}

func splitSlash(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == '/' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
