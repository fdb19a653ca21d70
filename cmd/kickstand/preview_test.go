package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/server"
	"github.com/kickstand/kickstand/internal/store"
)

const previewConfig = `server:
  http: ":8080"
  address_v4: 192.0.2.1
  address_v6: "2001:db8::1"
  data_dir: data
distros:
  - name: d
    release: rhel9
    arch: x86_64
    kernel: images/pxeboot/vmlinuz
    initrd: [images/pxeboot/initrd.img]
profiles:
  - name: p
    distro: d
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
    kernel_args: console=ttyS0
hosts:
  - {name: static4, macs: ["52:54:00:00:01:01"], ipv4: 192.0.2.11/24, gateway4: 192.0.2.1, nameservers: [192.0.2.53], profile: p, netboot: install}
  - {name: static6, macs: ["52:54:00:00:01:02"], ipv6: "2001:db8::12/64", gateway6: "2001:db8::1", profile: p, netboot: install}
  - {name: dual, macs: ["52:54:00:00:01:03"], ipv4: 192.0.2.13/24, ipv6: "2001:db8::13/64", profile: p, netboot: install}
  - {name: pool, macs: ["52:54:00:00:01:04"], profile: p, netboot: install}
`

// TestPreviewIsServed: what `kickstand render` prints is what the server
// sends the host's own request, byte for byte, for hosts with a static
// IPv4, a static IPv6, both, and no static address (identified by its
// DHCP lease): the iPXE script, the GRUB and PXELINUX configs, and the
// kickstart. The outputs are golden files too.
func TestPreviewIsServed(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "k.yaml")
	if err := os.WriteFile(cfg, []byte(previewConfig), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := server.Open(ctx, cfg, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	// The pool host's lease, as the DHCP server commits it.
	leased := netip.MustParseAddr("192.0.2.150")
	now := time.Now()
	if res, err := in.Store.CommitLeases(ctx, []store.LeaseOp{{Kind: store.LeaseBind, MAC: "52:54:00:00:01:04", Host: "pool", Addr: leased,
		PoolFirst: netip.MustParseAddr("192.0.2.100"), PoolLast: netip.MustParseAddr("192.0.2.199"), Until: now.Add(time.Hour), Now: now}}); err != nil || res[0].Err != nil {
		t.Fatalf("lease: %v %+v", err, res)
	}
	h := in.HTTPServer(nil).Handler()
	from := map[string]netip.Addr{"static4": netip.MustParseAddr("192.0.2.11"), "static6": netip.MustParseAddr("2001:db8::12"),
		"dual": netip.MustParseAddr("192.0.2.13"), "pool": leased}
	serve := func(client netip.Addr, path string) string {
		t.Helper()
		local := netip.MustParseAddr("192.0.2.1")
		if client.Is6() {
			local = netip.MustParseAddr("2001:db8::1")
		}
		r := httptest.NewRequest("GET", path, nil)
		r.RemoteAddr = netip.AddrPortFrom(client, 40000).String()
		r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 8080))))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("GET %s from %s: %d %s", path, client, w.Code, w.Body)
		}
		return w.Body.String()
	}
	token := regexp.MustCompile(`/ks/([A-Z2-7]{26})`)
	for _, host := range []string{"static4", "static6", "dual", "pool"} {
		served := map[string]string{
			"ipxe":     serve(from[host], "/boot.ipxe"),
			"grub":     serve(from[host], "/grub/grub.cfg"),
			"pxelinux": serve(from[host], "/pxelinux.cfg/default"),
		}
		m := token.FindStringSubmatch(served["ipxe"])
		if m == nil {
			t.Fatalf("%s: no token in the served script:\n%s", host, served["ipxe"])
		}
		served["kickstart"] = serve(from[host], "/ks/"+m[1])
		for _, kind := range []string{"ipxe", "grub", "pxelinux", "kickstart"} {
			out, stderr, err := run2(t, "render", kind, "--config", cfg, host)
			if err != nil {
				t.Fatalf("render %s %s: %v\n%s", kind, host, err, stderr)
			}
			if out != served[kind] {
				t.Errorf("render %s %s is not what the server sends:\n--- render\n%s\n--- served\n%s", kind, host, out, served[kind])
			}
			golden := filepath.Join("testdata", "golden", "preview-"+host+"."+kind)
			norm := strings.ReplaceAll(out, m[1], "TOKEN")
			norm = regexp.MustCompile(`valid until \S+\)`).ReplaceAllString(norm, "valid until T)")
			if *update {
				os.WriteFile(golden, []byte(norm), 0o644)
			}
			if want, _ := os.ReadFile(golden); string(want) != norm {
				t.Errorf("render %s %s differs from %s:\n%s", kind, host, golden, norm)
			}
		}
	}
}
