package e2e

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestProxyDHCPBeside_dnsmasq: dnsmasq (in the client namespace, DHCP
// only, no PXE options) gives the VM its address; kickstand in proxyDHCP
// mode gives the boot options; the SeaBIOS+iPXE VM boots and installs.
func TestProxyDHCPBesideDnsmasq(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, "dnsmasq")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2ep")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	if err := lab.Run(ctx, lab.Cli, "ip", "addr", "add", "192.0.2.2/24", "dev", vmtest.CliVeth); err != nil {
		t.Fatal(err)
	}
	dnsmasq := lab.Cmd(ctx, lab.Cli, "dnsmasq", "--no-daemon", "--port=0", "--interface="+vmtest.CliVeth, "--bind-interfaces",
		"--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,1h", "--dhcp-leasefile=/dev/null", "--log-dhcp", "--conf-file=/dev/null")
	var dlog strings.Builder
	dnsmasq.Stderr = &dlog
	if err := dnsmasq.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		dnsmasq.Process.Kill()
		dnsmasq.Wait()
		if t.Failed() {
			t.Logf("dnsmasq log:\n%s", dlog.String())
		}
	})
	cfg, data := labConfig(t, func(s string) string {
		return strings.Replace(s, "  mode: server\n", "  mode: proxy\n", 1)
	})
	k := startKickstand(t, ctx, lab, cfg, data)

	res, err := vmtest.BootVM(ctx, lab, vmtest.VMOptions{Name: "bios1", Firmware: vmtest.BIOS, MAC: vmtest.DefaultBIOSMAC, Timeout: 4 * time.Minute})
	if err != nil {
		t.Fatalf("VM: %v\n%s", err, tailOf(res))
	}
	if res.Find(ksOK) == "" || res.Find(done) == "" {
		t.Fatalf("install did not complete:\n%s", tailOf(res))
	}
	tl := k.waitTimeline(t, "bios1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "dhcp.offer", "http.script", "http.kernel", "http.kickstart", "callback.built")
	if !strings.Contains(dlog.String(), "DHCPACK") {
		t.Errorf("dnsmasq gave no address:\n%s", dlog.String())
	}
	if strings.Contains(tl, "offer 52:54:00:00:00:10 192.0.2.") {
		t.Errorf("kickstand offered an address in proxy mode:\n%s", tl)
	}
}
