package e2e

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/initrd"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestRealDracutRace1 replays seed 000's race #1 in a real dracut 059
// initramfs (Debian 12's dracut and network-legacy; build/real-dracut, made
// once by scripts/build-dracut-image.sh), not in the project's emulation.
// The command line is kickstand's, for a host with a static IPv6 address and
// no gateway, plus rd.net.timeout.ipv6dad=0: dracut 059 already waits for a
// router-advertised route, EL7's did not, and this makes it behave as EL7's.
// radvd starts 8 s after the address is configured.
//
//   - without kickstand's overlay (fixes: off) the kickstart fetch fails and
//     the route lookup says the network is unreachable;
//   - with the overlay initrd kickstand serves, its hook (sh builtins, ip and
//     sleep only, found in /lib/dracut/hooks) waits for the route, logs it,
//     and the fetch succeeds.
//
// The two boots run in parallel, each in its own lab.
func TestRealDracutRace1(t *testing.T) {
	vmtest.NeedVM(t)
	vmtest.Need(t, "radvd", "curl", "mmdebstrap")
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	t.Cleanup(cancel) // the parallel subtests run after this function returns
	kernel, initrd, err := vmtest.DracutImage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(v6raceConfig, "    kernel_args: console=ttyS0 net.ifnames=0 panic=5\n",
		"    kernel_args: console=ttyS0 net.ifnames=0 rd.neednet=1 rd.net.timeout.ipv6dad=0 rd.shell=0 rd.emergency=poweroff panic=-1 quiet\n", -1)
	conf = strings.Replace(conf, "    initrd: [initrd.img]\n", "    initrd: ["+filepath.Base(initrd)+"]\n", 1)
	for _, c := range []struct {
		name, host, mac string
	}{
		{"without the overlay", "v6unfixed", "52:54:00:00:06:02"},
		{"with the overlay", "v6fixed", "52:54:00:00:06:01"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			r := newRaceLab(t, ctx, "fwrd"+c.host[2:4], conf, kernel, regexp.MustCompile(`KSTEST: link up iface=`))
			if c.host == "v6fixed" {
				r.extraInitrds = el7UpdatesInRealSystemd(t, ctx, r.lab)
			}
			res := r.boot(t, ctx, c.host, c.mac)
			console := plainText(res.Serial)
			fetch := res.Find(regexp.MustCompile(`KSTEST: ks-fetch`))
			t.Logf("%s: %s (%s)", c.host, fetch, res.Elapsed.Round(time.Second))
			if strings.Contains(console, "command not found") {
				t.Errorf("a hook called a command the image lacks:\n%s", lastN(console, 3000))
			}
			if c.host == "v6unfixed" {
				if !regexp.MustCompile(`KSTEST: ks-fetch failed .*route=.*[Uu]nreachable`).MatchString(fetch) {
					t.Fatalf("without the overlay the fetch should fail with the network unreachable (race #1):\n%s", lastN(console, 4000))
				}
				return
			}
			if !strings.Contains(fetch, "KSTEST: ks-fetch ok") {
				t.Fatalf("with kickstand's overlay the fetch should succeed:\n%s", lastN(console, 4000))
			}
			if l := res.Find(regexp.MustCompile(`kickstand: IPv6 default route after [0-9]+ s: default via fe80::`)); l == "" {
				t.Errorf("the hook did not log the route it waited for:\n%s", lastN(console, 4000))
			} else {
				t.Logf("hook: %s", l)
			}
			// The EL7.0-7.2 updates.img's unit, run by the initramfs's real
			// systemd: race #2's ifcfg edit and race #3's bounded route wait.
			for _, re := range []*regexp.Regexp{
				regexp.MustCompile(`kickstand: /etc/sysconfig/network-scripts/ifcfg-eth0 has an empty IPADDR; removing BOOTPROTO`),
				regexp.MustCompile(`kickstand: IPv6 default route present after [0-9]+ s: default via fe80::`),
			} {
				if l := res.Find(re); l == "" {
					t.Errorf("the updates.img unit did not print /%s/:\n%s", re, lastN(console, 4000))
				} else {
					t.Logf("updates.img: %s", l)
				}
			}
		})
	}
}

// el7UpdatesInRealSystemd returns the initrd segments that let the real
// dracut image's systemd run kickstand's EL7.0-7.2 updates.img unit, which
// Anaconda would otherwise unpack over stage2: the image as kickstand serves
// it (a long bound, since the unit starts before the NIC is up), and an
// ifcfg with dracut's BOOTPROTO=static and an empty IPADDR (race #2).
func el7UpdatesInRealSystemd(t *testing.T, ctx context.Context, lab *vmtest.Lab) [][]byte {
	t.Helper()
	img, err := lab.Output(ctx, lab.Srv, "curl", "-gfsS", "http://[2001:db8:20::20]:8080/kickstand/updates/el7-v6-150s.img")
	if err != nil {
		t.Fatal(err)
	}
	ifcfg, err := initrd.Overlay([]initrd.File{{Path: "etc/sysconfig/network-scripts/ifcfg-eth0", Mode: 0o644,
		Data: []byte("DEVICE=eth0\nBOOTPROTO=static\nIPADDR=\nIPV6INIT=yes\nIPV6ADDR=2001:db8::10/64\n")}}, initrd.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	return [][]byte{[]byte(img), ifcfg}
}
