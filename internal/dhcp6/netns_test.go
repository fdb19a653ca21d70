package dhcp6

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv6"
	"github.com/insomniacslk/dhcp/iana"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// These tests run real DHCPv6 clients (ISC dhclient -6, Kea's perfdhcp)
// and a crafted relay against the server inside network namespaces they
// create, on 2001:db8::/32 only, removed afterwards.

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// stopPidFile ends the daemon whose pid file a test's own dhclient wrote,
// and only if it is still that dhclient.
func stopPidFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return
	}
	if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); strings.TrimSpace(string(comm)) == "dhclient" {
		if p, err := os.FindProcess(pid); err == nil {
			p.Kill()
		}
	}
}

// leaseFileDUID is a dhclient lease file that makes dhclient -6 use duid
// (it reads default-duid at start), the way a test presents a DUID that
// dhclient would not make itself.
func leaseFileDUID(duid []byte) string {
	var b strings.Builder
	for _, c := range duid {
		fmt.Fprintf(&b, `\%03o`, c)
	}
	return fmt.Sprintf("default-duid \"%s\";\n", b.String())
}

// TestDhclient6: ISC dhclient -6 gets its host's reservation whether the
// host is reserved by MAC (DUID-LL and DUID-LLT, the MAC read out of the
// DUID), by its SMBIOS UUID (DUID-UUID, as OVMF sends), or by a DUID
// listed in dhcp6.duids (a DUID-EN with no MAC in it); with the subnet's
// DNS servers and search list. Then dhclient -6 -r releases it.
func TestDhclient6(t *testing.T) {
	lab, ctx := enginetest.LabFor(t, "ksd6-dhclient", vmtest.IPv6Only(), 3*time.Minute, "dhclient")
	_, st, events := startServer(t, lab, nil)
	waitAnswered(t, lab)
	cases := []struct {
		name, mac, duidType string
		duid                []byte // written as default-duid
		host, addr          string
	}{
		{"by MAC, DUID-LL", "52:54:00:00:00:10", "LL", nil, "pxe1", "2001:db8::10"},
		{"by MAC, DUID-LLT", "52:54:00:00:00:11", "LLT", nil, "grub1", "2001:db8::11"},
		{"by UUID, DUID-UUID", "52:54:00:00:0c:01", "LL", duidUUID.ToBytes(), "ovmf1", "2001:db8::12"},
		{"by DUID, DUID-EN", "52:54:00:00:0c:02", "LL", duidEN.ToBytes(), "byduid", "2001:db8::13"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// Down and up again, so the link-local address follows the new
			// MAC, and the server forgets the old neighbour entry.
			for _, step := range [][]string{
				{"cli", "ip", "link", "set", vmtest.CliVeth, "down"},
				{"cli", "ip", "link", "set", vmtest.CliVeth, "address", c.mac},
				{"cli", "ip", "link", "set", vmtest.CliVeth, "up"},
				{"srv", "ip", "neigh", "flush", "dev", lab.Bridge},
			} {
				if err := lab.Run(ctx, step[0], step[1:]...); err != nil {
					t.Fatal(err)
				}
			}
			waitLinkLocal(ctx, t, lab)
			dir := t.TempDir()
			log := filepath.Join(dir, "script.log")
			// Our own script: the stock one would rewrite the host's
			// resolv.conf (namespaces share files).
			writeScript(t, filepath.Join(dir, "script"), fmt.Sprintf(`
echo "$reason ip6=$new_ip6_address/$new_ip6_prefixlen life=$new_preferred_life/$new_max_life dns=$new_dhcp6_name_servers search=$new_dhcp6_domain_search" >> '%s'
exit 0
`, log))
			leases, pidf := filepath.Join(dir, "leases"), filepath.Join(dir, "pid")
			if c.duid != nil {
				if err := os.WriteFile(leases, []byte(leaseFileDUID(c.duid)), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			conf := filepath.Join(dir, "dhclient.conf")
			os.WriteFile(conf, []byte("request dhcp6.name-servers, dhcp6.domain-search;\n"), 0o644)
			t.Cleanup(func() { stopPidFile(pidf) })
			argv := []string{"dhclient", "-6", "-1", "-v", "-D", c.duidType, "-cf", conf, "-sf", filepath.Join(dir, "script"), "-lf", leases, "-pf", pidf}
			out, err := lab.Cmd(ctx, "cli", append(argv, vmtest.CliVeth)...).CombinedOutput()
			if err != nil {
				t.Fatalf("dhclient -6: %v\n%s", err, out)
			}
			b, _ := os.ReadFile(log)
			want := fmt.Sprintf("BOUND6 ip6=%s/128 life=1800/3600 dns=2001:db8::53 2001:db8::54 search=lab.example. example.com.", c.addr)
			if !strings.Contains(string(b), want) {
				t.Fatalf("dhclient script saw:\n%s\nwant a line %q\ndhclient:\n%s", b, want, out)
			}
			l, err := st.Lease(ctx, netip.MustParseAddr(c.addr))
			if err != nil || l.State != store.LeaseBound || l.Host != c.host {
				t.Fatalf("stored lease: %+v, %v", l, err)
			}
			if e := events.Find(dhcpengine.EventReply, func(e *dhcpengine.Event) bool { return e.Host == c.host }); e == nil || e.IP.String() != c.addr {
				t.Errorf("reply event: %+v", e)
			}
			if i > 0 {
				return
			}
			// Release: dhclient -6 -r stops the running client and sends
			// a Release, which the server records before it replies.
			rel := append(append([]string{}, argv[:1]...), append([]string{"-6", "-r", "-v", "-D", c.duidType, "-cf", conf,
				"-sf", filepath.Join(dir, "script"), "-lf", leases, "-pf", pidf}, vmtest.CliVeth)...)
			out, err = lab.Cmd(ctx, "cli", rel...).CombinedOutput()
			if err != nil {
				t.Fatalf("dhclient -6 -r: %v\n%s", err, out)
			}
			// dhclient -r does not wait for the Reply: poll, bounded.
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				if l, err = st.Lease(ctx, netip.MustParseAddr(c.addr)); err == nil && l.State == store.LeaseReleased {
					break
				}
			}
			if err != nil || l.State != store.LeaseReleased {
				t.Errorf("after dhclient -6 -r: %+v, %v\n%s", l, err, out)
			}
		})
	}
}

// TestRelayOption79: a relay-forward (built with insomniacslk/dhcp, sent
// from the client namespace as a relay agent would) carrying a Solicit
// whose DUID holds no MAC, with option 79 naming far1's MAC: kickstand
// matches far1 by that MAC, gives it its reservation on the relay's link,
// and the relay-reply comes back to the relay's port 547 with its
// Interface-Id. Then the Request, the same way.
func TestRelayOption79(t *testing.T) {
	lab := enginetest.NewLab(t, "ksd6-relay", vmtest.IPv6Only())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, st, _ := startServer(t, lab, nil)
	if err := lab.Run(ctx, "cli", "ip", "addr", "add", "2001:db8::2/64", "dev", vmtest.CliVeth, "nodad"); err != nil {
		t.Fatal(err)
	}
	pc, err := lab.ListenPacket("cli", "udp6", "[2001:db8::2]:547")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	server := &net.UDPAddr{IP: net.ParseIP("2001:db8::1"), Port: 547}
	duid := &dhcpv6.DUIDEN{EnterpriseNumber: 32473, EnterpriseIdentifier: []byte("relay-test")}
	exchange := func(m *dhcpv6.Message) *dhcpv6.Message {
		t.Helper()
		fw, err := dhcpv6.EncapsulateRelay(m, dhcpv6.MessageTypeRelayForward, net.ParseIP("2001:db8:5::1"), net.ParseIP("fe80::5054:ff:fe00:999"))
		if err != nil {
			t.Fatal(err)
		}
		fw.AddOption(dhcpv6.OptInterfaceID([]byte("ge-0/0/7")))
		fw.AddOption(dhcpv6.OptClientLinkLayerAddress(iana.HWTypeEthernet, mustMAC(t, "52:54:00:00:02:10")))
		for try := 0; try < 5; try++ {
			if _, err := pc.WriteTo(fw.ToBytes(), server); err != nil {
				t.Fatal(err)
			}
			pc.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 1500)
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				continue // lost: the relay would retransmit too
			}
			if from.(*net.UDPAddr).Port != 547 {
				t.Errorf("reply from port %d", from.(*net.UDPAddr).Port)
			}
			p, err := dhcpv6.FromBytes(buf[:n])
			if err != nil {
				t.Fatal(err)
			}
			rr, ok := p.(*dhcpv6.RelayMessage)
			if !ok || rr.MessageType != dhcpv6.MessageTypeRelayReply || string(rr.Options.InterfaceID()) != "ge-0/0/7" ||
				!rr.PeerAddr.Equal(net.ParseIP("fe80::5054:ff:fe00:999")) || !rr.LinkAddr.Equal(net.ParseIP("2001:db8:5::1")) {
				t.Fatalf("not the relay-reply expected: %s", p.Summary())
			}
			inner, ok := rr.Options.RelayMessage().(*dhcpv6.Message)
			if !ok {
				t.Fatalf("relay-reply holds %v", rr.Options.RelayMessage())
			}
			if inner.TransactionID != m.TransactionID {
				continue // a late answer to an earlier message's retry
			}
			return inner
		}
		t.Fatal("no relay-reply after 5 tries")
		return nil
	}
	adv := exchange(solicit(t, duid, dhcpv6.OptRequestedOption(dhcpv6.OptionDNSRecursiveNameServer)))
	if a, _ := iaAddr(t, adv); adv.MessageType != dhcpv6.MessageTypeAdvertise || a.String() != "2001:db8:5::10" {
		t.Fatalf("Advertise: %s", adv.Summary())
	}
	req, err := dhcpv6.NewRequestFromAdvertise(adv)
	if err != nil {
		t.Fatal(err)
	}
	rep := exchange(req)
	if a, _ := iaAddr(t, rep); rep.MessageType != dhcpv6.MessageTypeReply || a.String() != "2001:db8:5::10" {
		t.Fatalf("Reply: %s", rep.Summary())
	}
	l, err := st.Lease(ctx, netip.MustParseAddr("2001:db8:5::10"))
	if err != nil || l.State != store.LeaseBound || l.Host != "far1" || l.MAC != "52:54:00:00:02:10" {
		t.Errorf("stored lease: %+v, %v", l, err)
	}
}

// waitAnswered sends Solicits from the client namespace, as a client on
// the link would, until one gets an Advertise (at most 50 tries, 10 s).
func waitAnswered(t *testing.T, lab *vmtest.Lab) {
	t.Helper()
	err := vmtest.InNetns(lab.Cli, func() error {
		ifi, err := net.InterfaceByName(vmtest.CliVeth)
		if err != nil {
			return err
		}
		c, err := net.ListenUDP("udp6", &net.UDPAddr{IP: net.IPv6unspecified, Port: 546})
		if err != nil {
			return err
		}
		defer c.Close()
		dst := &net.UDPAddr{IP: net.ParseIP("ff02::1:2"), Port: 547, Zone: strconv.Itoa(ifi.Index)}
		sol := solicit(t, &dhcpv6.DUIDLL{HWType: iana.HWTypeEthernet, LinkLayerAddr: ifi.HardwareAddr})
		buf := make([]byte, 1500)
		for try := 0; try < 50; try++ {
			if _, err := c.WriteToUDP(sol.ToBytes(), dst); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
			n, _, err := c.ReadFromUDP(buf)
			if err != nil {
				continue
			}
			if m, err := dhcpv6.MessageFromBytes(buf[:n]); err == nil && m.TransactionID == sol.TransactionID {
				return nil
			}
		}
		return fmt.Errorf("no Advertise to %d Solicits", 50)
	})
	if err != nil {
		t.Fatalf("server not reachable from the client namespace: %v", err)
	}
}

// perfdhcpStats reads sent/received counts per exchange from perfdhcp's
// report.
func perfdhcpStats(out string) map[string][2]int {
	stats := map[string][2]int{}
	cur := ""
	head := regexp.MustCompile(`Statistics for: ([A-Z-]+)`)
	num := regexp.MustCompile(`^(sent|received) packets: (\d+)`)
	for _, line := range strings.Split(out, "\n") {
		if m := head.FindStringSubmatch(line); m != nil {
			cur = m[1]
			continue
		}
		if m := num.FindStringSubmatch(strings.TrimSpace(line)); m != nil && cur != "" {
			n, _ := strconv.Atoi(m[2])
			v := stats[cur]
			if m[1] == "sent" {
				v[0] = n
			} else {
				v[1] = n
			}
			stats[cur] = v
		}
	}
	return stats
}

// TestPerfdhcp6: Kea's perfdhcp -6 runs 400 four-way exchanges (Solicit,
// Advertise, Request, Reply) from as many DUIDs against kickstand, bounded
// in count and time, and nearly all complete with a durable lease each.
func TestPerfdhcp6(t *testing.T) {
	lab, ctx := enginetest.LabFor(t, "ksd6-perf", vmtest.IPv6Only(), 2*time.Minute, "perfdhcp")
	s, st, _ := startServer(t, lab, func(c *inventory.Config) {
		c.DHCP6.Subnets[0].Pool = "2001:db8::1:0-2001:db8::1:ffff"
	})
	// A fresh bridge drops multicast for about a second after it comes
	// up (Ip6InNoRoutes): wait, bounded, until a Solicit is answered.
	waitAnswered(t, lab)
	const n = 400
	out, err := lab.Cmd(ctx, "cli", "timeout", "60", "perfdhcp", "-6", "-l", vmtest.CliVeth, "-r", "200", "-R", strconv.Itoa(n),
		"-n", strconv.Itoa(n), "-p", "20", "-W", "1000000").CombinedOutput()
	// perfdhcp exits 3 when some packets were dropped; judge by its counts.
	stats := perfdhcpStats(string(out))
	sa, rr := stats["SOLICIT-ADVERTISE"], stats["REQUEST-REPLY"]
	if sa[0] == 0 || rr[0] == 0 {
		t.Fatalf("perfdhcp: %v\n%s\nserver %+v", err, out, s.Stats())
	}
	t.Logf("perfdhcp -6: Solicit %d sent / %d Advertise, Request %d sent / %d Reply; server %+v", sa[0], sa[1], rr[0], rr[1], s.Stats())
	if sa[1] < sa[0]*95/100 || rr[1] < rr[0]*95/100 || rr[1] < n*9/10 {
		t.Errorf("too many exchanges lost:\n%s", out)
	}
	ls, err := st.Leases(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	bound := 0
	for _, l := range ls {
		if l.State == store.LeaseBound {
			bound++
		}
	}
	// perfdhcp may overshoot -n by a few exchanges, for clients it has
	// already served: at most n distinct clients (-R n) hold leases.
	if bound < min(rr[1], n) {
		t.Errorf("%d bound leases in the store, perfdhcp got %d Replies for %d clients", bound, rr[1], n)
	}
}

// TestOVMFPXEv6: real UEFI firmware (OVMF's PXE over IPv6 in QEMU, TCG)
// takes kickstand's DHCPv6 answer. Its DUID is a DUID-UUID made from the
// SMBIOS UUID QEMU gives it, so the match proves the EDK2 byte order; the
// firmware then shows the reserved address and asks the boot server named
// in option 59 (tftp://[2001:db8::1]/ipxe.efi) for the file, which a UDP
// socket on port 69 in the server namespace sees.
func TestOVMFPXEv6(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	lab := enginetest.NewLab(t, "ksd6-ovmf", vmtest.IPv6Only())
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFCode, vmtest.OVMFVars)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	_, st, events := startServer(t, lab, nil)
	tftp, err := lab.ListenPacket("srv", "udp6", "[2001:db8::1]:69")
	if err != nil {
		t.Fatal(err)
	}
	defer tftp.Close()
	vm, err := vmtest.StartVM(ctx, lab, vmtest.VMOptions{Name: "ovmf6", Firmware: vmtest.UEFI, NoIPv4PXE: true,
		MAC: "52:54:00:00:0c:0f", Timeout: 150 * time.Second,
		ExtraArgs: []string{"-uuid", "8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a08"}})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	tftp.SetReadDeadline(time.Now().Add(140 * time.Second))
	buf := make([]byte, 1500)
	n, from, err := tftp.ReadFrom(buf)
	if err != nil {
		t.Fatalf("no TFTP request from the firmware: %v\nevents:\n%s\nserial:\n%s", err, events, vm.Serial())
	}
	// RRQ: opcode 1, file name, NUL, mode, NUL...
	if n < 4 || buf[1] != 1 || !strings.HasPrefix(string(buf[2:n]), "ipxe.efi\x00") {
		t.Errorf("from %v: %q is not a read request for ipxe.efi", from, buf[:n])
	}
	if a := from.(*net.UDPAddr).IP.String(); a != "2001:db8::12" {
		t.Errorf("TFTP request from %s, want the reserved 2001:db8::12", a)
	}
	if e := events.Find(dhcpengine.EventReply, func(e *dhcpengine.Event) bool { return e.Host == "ovmf1" }); e == nil || e.IP.String() != "2001:db8::12" || e.BootFile != "tftp://[2001:db8::1]/ipxe.efi" {
		t.Errorf("reply event: %+v", e)
	}
	if l, err := st.Lease(ctx, netip.MustParseAddr("2001:db8::12")); err != nil || l.State != store.LeaseBound || l.Host != "ovmf1" {
		t.Errorf("stored lease: %+v, %v", l, err)
	}
}

// TestOVMFHTTPBootv6: OVMF's UEFI HTTP boot over IPv6 (PXE switched off)
// takes kickstand's Advertise and Reply, which carry the "HTTPClient"
// vendor class and an http:// URL in option 59, and asks kickstand's HTTP
// port for the loader; a listener on [2001:db8::1]:8080 sees the request.
func TestOVMFHTTPBootv6(t *testing.T) {
	if testing.Short() {
		t.Skip("boots a VM")
	}
	lab := enginetest.NewLab(t, "ksd6-http", vmtest.IPv6Only())
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFCode, vmtest.OVMFVars)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	srv, _, events := startServer(t, lab, nil)
	ln, err := lab.Listen("srv", "tcp6", "[2001:db8::1]:8080")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 512)
		n, _ := c.Read(buf)
		line, _, _ := strings.Cut(string(buf[:n]), "\r\n")
		got <- line
	}()
	vm, err := vmtest.StartVM(ctx, lab, vmtest.VMOptions{Name: "http6", Firmware: vmtest.UEFI, NoIPv4PXE: true, NoIPv6PXE: true,
		MAC: "52:54:00:00:00:10", Timeout: 200 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	select {
	case line := <-got:
		if !regexp.MustCompile(`^(GET|HEAD) /ipxe\.efi HTTP/1\.1$`).MatchString(line) {
			t.Errorf("firmware asked %q", line)
		}
	case <-time.After(190 * time.Second):
		t.Fatalf("no HTTP request from the firmware (stats %+v)\nevents:\n%s\nserial:\n%s", srv.Stats(), events, vm.Serial())
	}
	if e := events.Find(dhcpengine.EventReply, func(e *dhcpengine.Event) bool { return e.Host == "pxe1" }); e == nil || e.IP.String() != "2001:db8::10" || e.BootFile != "http://[2001:db8::1]:8080/ipxe.efi" {
		t.Errorf("reply event: %+v\n%s", e, events)
	}
}

// waitLinkLocal waits for the client veth's new link-local address to
// leave DAD: dhclient -6 exits at once ("no link-local IPv6 address") when
// it starts before the kernel has one, which a loaded machine shows.
func waitLinkLocal(ctx context.Context, t *testing.T, lab *vmtest.Lab) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		out, err := lab.Output(ctx, "cli", "ip", "-6", "addr", "show", "dev", vmtest.CliVeth, "scope", "link")
		if err == nil && strings.Contains(out, "fe80::") && !strings.Contains(out, "tentative") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no usable link-local address on %s after 15 s: %s %v", vmtest.CliVeth, out, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
