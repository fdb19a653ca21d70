package dhcp4

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"

	"github.com/kickstand/kickstand/internal/dhcpengine"
	"github.com/kickstand/kickstand/internal/dhcpengine/enginetest"
	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
	"github.com/kickstand/kickstand/internal/vmtest"
)

// These tests run real DHCP clients (dhclient, udhcpc, dhcrelay, dnsmasq)
// against the server inside network namespaces they create; everything is
// on 192.0.2.0/24 and 198.51.100.0/24 and is removed afterwards.

// addNetns creates an extra namespace, removed (with its processes) at cleanup.
func addNetns(t *testing.T, name string) {
	t.Helper()
	run(t, "ip", "netns", "add", name)
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "pids", name).Output(); err == nil {
			for _, pid := range strings.Fields(string(out)) {
				exec.Command("kill", "-9", pid).Run()
			}
		}
		time.Sleep(100 * time.Millisecond)
		exec.Command("ip", "netns", "del", name).Run()
	})
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

func writeScript(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// dhclientLease parses the last lease in a dhclient lease file.
func dhclientLease(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "lease {")
	last := blocks[len(blocks)-1]
	out := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(last))
	for sc.Scan() {
		line := strings.TrimSuffix(strings.TrimSpace(sc.Text()), ";")
		f := strings.SplitN(line, " ", 3)
		switch {
		case len(f) == 3 && f[0] == "option":
			out[f[1]] = strings.Trim(f[2], `"`)
		case len(f) >= 2:
			out[f[0]] = strings.Trim(strings.Join(f[1:], " "), `"`)
		}
	}
	return out
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDhclient: ISC dhclient gets bios1's reservation and every option,
// renews it at T1 (unicast), and after a restart (INIT-REBOOT) keeps it.
func TestDhclient(t *testing.T) {
	lab, ctx := enginetest.LabFor(t, "ksd4-dhclient", vmtest.NoIPv6(), 2*time.Minute, "dhclient")
	_, st, events := startServer(t, lab, "server", func(c *inventory.Config) {
		c.DHCP.Subnets[0].LeaseTime = inventory.Duration(8 * time.Second) // T1 at 4 s
	})
	if err := lab.Run(ctx, "cli", "ip", "link", "set", vmtest.CliVeth, "address", "52:54:00:00:00:10"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "script.log")
	// Our own script: the stock one would rewrite the host's resolv.conf.
	writeScript(t, filepath.Join(dir, "script"), fmt.Sprintf(`
echo "$reason ip=$new_ip_address mask=$new_subnet_mask" >> %s
case "$reason" in BOUND|RENEW|REBIND|REBOOT) ip -4 addr replace "$new_ip_address/$new_subnet_mask" dev "$interface" ;; esac
exit 0
`, log))
	conf := filepath.Join(dir, "dhclient.conf")
	os.WriteFile(conf, []byte("request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, ntp-servers;\n"), 0o644)
	leases := filepath.Join(dir, "leases")
	dhclient := func() {
		t.Helper()
		out, err := os.Create(filepath.Join(dir, "dhclient.out"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		// dhclient forks into the background once bound; a file, not a
		// pipe, for its output so the parent's exit is all we wait for.
		cmd := lab.Cmd(ctx, "cli", "dhclient", "-4", "-1", "-v", "-cf", conf, "-sf", filepath.Join(dir, "script"),
			"-lf", leases, "-pf", filepath.Join(dir, "pid"), vmtest.CliVeth)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			b, _ := os.ReadFile(out.Name())
			t.Fatalf("dhclient: %v\n%s", err, b)
		}
	}
	dhclient()
	l := dhclientLease(t, leases)
	want := map[string]string{
		"fixed-address":          "192.0.2.10",
		"subnet-mask":            "255.255.255.0",
		"routers":                "192.0.2.1",
		"domain-name-servers":    "192.0.2.53,192.0.2.54",
		"domain-name":            "lab.example",
		"ntp-servers":            "192.0.2.123",
		"host-name":              "bios1",
		"dhcp-server-identifier": "192.0.2.1",
		"dhcp-lease-time":        "8",
	}
	for k, v := range want {
		if l[k] != v {
			t.Errorf("lease %s = %q, want %q", k, l[k], v)
		}
	}
	if e := events.Find(dhcpengine.EventAck, func(e *dhcpengine.Event) bool { return e.MAC == "52:54:00:00:00:10" }); e == nil || e.Host != "bios1" || e.IP.String() != "192.0.2.10" {
		t.Errorf("ack event: %+v", e)
	}
	// The running dhclient renews at T1.
	waitFor(t, 20*time.Second, "a RENEW", func() bool {
		b, _ := os.ReadFile(log)
		return strings.Contains(string(b), "RENEW ip=192.0.2.10")
	})
	sl, err := st.Lease(ctx, netip.MustParseAddr("192.0.2.10"))
	if err != nil || sl.State != store.LeaseBound || sl.MAC != "52:54:00:00:00:10" {
		t.Fatalf("stored lease: %+v, %v", sl, err)
	}
	// Restart: dhclient asks for its old address (INIT-REBOOT).
	if pid, err := os.ReadFile(filepath.Join(dir, "pid")); err == nil {
		pid := strings.TrimSpace(string(pid))
		// Only ever signal the dhclient this test started.
		if comm, _ := os.ReadFile("/proc/" + pid + "/comm"); strings.TrimSpace(string(comm)) == "dhclient" {
			exec.Command("kill", pid).Run()
		}
	}
	time.Sleep(300 * time.Millisecond)
	dhclient()
	b, _ := os.ReadFile(log)
	if !regexp.MustCompile(`(?m)^REBOOT ip=192\.0\.2\.10 `).Match(b) {
		t.Errorf("second run did not REBOOT to 192.0.2.10:\n%s", b)
	}
	if l := dhclientLease(t, leases); l["fixed-address"] != "192.0.2.10" {
		t.Errorf("second run got %q", l["fixed-address"])
	}
}

// udhcpc runs busybox udhcpc once in ns and returns the environment its
// script saw on "bound".
func udhcpc(t *testing.T, ctx context.Context, lab *vmtest.Lab, ns, iface string, args ...string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	writeScript(t, filepath.Join(dir, "script"), fmt.Sprintf(`[ "$1" = bound ] && env > %s
exit 0
`, envFile))
	argv := append([]string{"udhcpc", "-f", "-q", "-n", "-t", "5", "-T", "1", "-i", iface, "-s", filepath.Join(dir, "script")}, args...)
	if out, err := lab.Cmd(ctx, ns, argv...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	data, err := os.ReadFile(envFile)
	if err != nil {
		t.Fatalf("udhcpc never bound: %v", err)
	}
	env := map[string]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			env[k] = v
		}
	}
	return env
}

// TestUdhcpcArch: udhcpc posing as each firmware gets that firmware's
// loader, and iPXE (user class) gets the script URL.
func TestUdhcpcArch(t *testing.T) {
	lab, ctx := enginetest.LabFor(t, "ksd4-udhcpc", vmtest.NoIPv6(), 2*time.Minute, "udhcpc")
	startServer(t, lab, "server", nil)
	for _, c := range []struct {
		name, mac string
		args      []string
		ip, file  string
	}{
		{"BIOS", "52:54:00:00:00:10", []string{"-V", "PXEClient", "-x", "0x5d:0000"}, "192.0.2.10", "undionly.kpxe"},
		{"UEFI x64", "52:54:00:00:01:10", []string{"-V", "PXEClient", "-x", "0x5d:0007"}, "192.0.2.11", "ipxe.efi"},
		{"UEFI HTTP", "52:54:00:00:01:10", []string{"-V", "HTTPClient", "-x", "0x5d:0010"}, "192.0.2.11", "http://192.0.2.1:8080/ipxe.efi"},
		{"UEFI HTTP arch only", "52:54:00:00:01:10", []string{"-V", "PXEClient", "-x", "0x5d:0010"}, "192.0.2.11", "http://192.0.2.1:8080/ipxe.efi"},
		// iPXE sends its user class as the bare string "iPXE".
		{"iPXE", "52:54:00:00:00:10", []string{"-V", "PXEClient", "-x", "0x5d:0000", "-x", "0x4d:69505845"}, "192.0.2.10",
			"http://192.0.2.1:8080/boot.ipxe?arch=0&mac=52%3A54%3A00%3A00%3A00%3A10"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := lab.Run(ctx, "cli", "ip", "link", "set", vmtest.CliVeth, "address", c.mac); err != nil {
				t.Fatal(err)
			}
			env := udhcpc(t, ctx, lab, "cli", vmtest.CliVeth, c.args...)
			if env["ip"] != c.ip || env["boot_file"] != c.file || env["siaddr"] != "192.0.2.1" {
				t.Errorf("ip=%q boot_file=%q siaddr=%q; want %s %s 192.0.2.1", env["ip"], env["boot_file"], env["siaddr"], c.ip, c.file)
			}
			if env["bootfile"] != c.file { // option 67
				t.Errorf("option 67 = %q, want %q", env["bootfile"], c.file)
			}
			wantTFTP := ""
			if !strings.Contains(c.file, "://") {
				wantTFTP = "192.0.2.1"
			}
			if env["tftp"] != wantTFTP || env["sname"] != wantTFTP {
				t.Errorf("option 66 %q sname %q, want %q", env["tftp"], env["sname"], wantTFTP)
			}
		})
	}
	// A machine kickstand does not know gets an address but no loader
	// (menu.unknown is ignore).
	if err := lab.Run(ctx, "cli", "ip", "link", "set", vmtest.CliVeth, "address", "52:54:00:00:09:99"); err != nil {
		t.Fatal(err)
	}
	env := udhcpc(t, ctx, lab, "cli", vmtest.CliVeth, "-V", "PXEClient", "-x", "0x5d:0000")
	if env["ip"] != "192.0.2.100" || env["boot_file"] != "" || env["bootfile"] != "" {
		t.Errorf("unknown machine: ip=%q boot_file=%q", env["ip"], env["boot_file"])
	}
}

// TestRelayed: a relay in its own namespace (a small relay agent written
// here, so that the test sees the raw replies) forwards a client's DISCOVER
// and REQUEST with giaddr and option 82; kickstand answers the relay's port
// 67 from the relayed subnet's pool and echoes option 82.
func TestRelayed(t *testing.T) {
	lab := enginetest.NewLab(t, "ksd4-relay", vmtest.NoIPv6())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rly := lab.Name + "-rly"
	addNetns(t, rly)
	for _, argv := range [][]string{
		{"ip", "-n", lab.Srv, "link", "add", "rs0", "type", "veth", "peer", "name", "rly0", "netns", rly},
		{"ip", "-n", lab.Srv, "link", "set", "rs0", "master", lab.Bridge},
		{"ip", "-n", lab.Srv, "link", "set", "rs0", "up"},
		{"ip", "-n", rly, "addr", "add", "192.0.2.3/24", "dev", "rly0"},
		{"ip", "-n", rly, "link", "set", "rly0", "up"},
		{"ip", "-n", rly, "link", "add", "down0", "type", "veth", "peer", "name", "down1"},
		{"ip", "-n", rly, "addr", "add", "198.51.100.1/24", "dev", "down0"},
		{"ip", "-n", rly, "link", "set", "down1", "up"},
		{"ip", "-n", rly, "link", "set", "down0", "up"},
		{"ip", "-n", lab.Srv, "route", "add", "198.51.100.0/24", "via", "192.0.2.3"},
	} {
		run(t, argv...)
	}
	_, st, _ := startServer(t, lab, "server", nil)
	pc, err := lab.ListenPacket(rly, "udp4", "198.51.100.1:67")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	opt82 := []byte{1, 5, 'p', 'o', 'r', 't', '7', 2, 6, 0x02, 0, 0, 0, 0, 0x07}
	exchange := func(p *dhcpv4.DHCPv4) *dhcpv4.DHCPv4 {
		t.Helper()
		p.GatewayIPAddr = net.IPv4(198, 51, 100, 1)
		p.HopCount = 1
		p.Options[dhcpv4.OptionRelayAgentInformation.Code()] = opt82
		if _, err := pc.WriteTo(p.ToBytes(), &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 67}); err != nil {
			t.Fatal(err)
		}
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				t.Fatalf("no reply at the relay: %v", err)
			}
			r, err := dhcpv4.FromBytes(buf[:n])
			if err != nil || r.TransactionID != p.TransactionID {
				continue
			}
			if from.String() != "192.0.2.1:67" {
				t.Errorf("reply from %v", from)
			}
			if got := r.Options.Get(dhcpv4.OptionRelayAgentInformation); string(got) != string(opt82) {
				t.Errorf("%s: option 82 = %x, want %x", r.MessageType(), got, opt82)
			}
			return r
		}
	}
	for _, c := range []struct{ mac, want string }{{"52:54:00:00:02:10", "198.51.100.20"}, {"02:00:00:00:00:07", "198.51.100.100"}} {
		offer := exchange(packet(t, c.mac))
		if offer.MessageType() != dhcpv4.MessageTypeOffer || offer.YourIPAddr.String() != c.want {
			t.Fatalf("%s: %s %v, want an offer of %s", c.mac, offer.MessageType(), offer.YourIPAddr, c.want)
		}
		ack := exchange(req(t, offer))
		if ack.MessageType() != dhcpv4.MessageTypeAck || ack.YourIPAddr.String() != c.want || fmt.Sprint(ack.Router()) != "[198.51.100.1]" {
			t.Fatalf("%s: %s %v router %v", c.mac, ack.MessageType(), ack.YourIPAddr, ack.Router())
		}
		if l, err := st.Lease(ctx, netip.MustParseAddr(c.want)); err != nil || l.MAC != c.mac || l.State != store.LeaseBound {
			t.Errorf("stored: %+v, %v", l, err)
		}
	}
}

// TestDhcrelay: the same through ISC dhcrelay (with -a, so it adds option
// 82 and needs it echoed) and a real client behind it.
func TestDhcrelay(t *testing.T) {
	lab, ctx := enginetest.LabFor(t, "ksd4-dhcrelay", vmtest.NoIPv6(), time.Minute, "dhcrelay", "udhcpc")
	rly, far := lab.Name+"-rly", lab.Name+"-far"
	addNetns(t, rly)
	addNetns(t, far)
	for _, argv := range [][]string{
		{"ip", "-n", lab.Srv, "link", "add", "rs0", "type", "veth", "peer", "name", "rly0", "netns", rly},
		{"ip", "-n", lab.Srv, "link", "set", "rs0", "master", lab.Bridge},
		{"ip", "-n", lab.Srv, "link", "set", "rs0", "up"},
		{"ip", "-n", rly, "addr", "add", "192.0.2.3/24", "dev", "rly0"},
		{"ip", "-n", rly, "link", "set", "rly0", "up"},
		{"ip", "-n", rly, "link", "add", "down0", "type", "veth", "peer", "name", "fc0", "netns", far},
		{"ip", "-n", rly, "addr", "add", "198.51.100.1/24", "dev", "down0"},
		{"ip", "-n", rly, "link", "set", "down0", "up"},
		{"ip", "-n", far, "link", "set", "fc0", "address", "52:54:00:00:02:10"},
		{"ip", "-n", far, "link", "set", "fc0", "up"},
		{"ip", "-n", lab.Srv, "route", "add", "198.51.100.0/24", "via", "192.0.2.3"},
	} {
		run(t, argv...)
	}
	startServer(t, lab, "server", nil)
	relay := lab.Cmd(ctx, rly, "dhcrelay", "-4", "-d", "-a", "-pf", filepath.Join(t.TempDir(), "pid"), "-id", "down0", "-iu", "rly0", "192.0.2.1")
	var out strings.Builder
	relay.Stdout, relay.Stderr = &out, &out
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { relay.Process.Kill(); relay.Wait() }()
	env := udhcpc(t, ctx, lab, far, "fc0")
	if env["ip"] != "198.51.100.20" || env["router"] != "198.51.100.1" || env["hostname"] != "far1" {
		t.Errorf("through dhcrelay: ip=%q router=%q hostname=%q\nrelay log:\n%s", env["ip"], env["router"], env["hostname"], out.String())
	}
}

// pxeClient is a PXE ROM's side of proxyDHCP, run in the client namespace:
// broadcast a DISCOVER, gather every offer for a while.
type pxeClient struct {
	conn *net.UDPConn
	mac  net.HardwareAddr
	mods []dhcpv4.Modifier
}

func (c *pxeClient) offers(t *testing.T, wait time.Duration) []*dhcpv4.DHCPv4 {
	t.Helper()
	d, err := dhcpv4.NewDiscovery(c.mac, c.mods...)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.conn.WriteToUDPAddrPort(d.ToBytes(), netip.MustParseAddrPort("255.255.255.255:67")); err != nil {
		t.Fatal(err)
	}
	var out []*dhcpv4.DHCPv4
	deadline := time.Now().Add(wait)
	buf := make([]byte, 1500)
	for {
		c.conn.SetReadDeadline(deadline)
		n, _, err := c.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return out
		}
		if r, err := dhcpv4.FromBytes(buf[:n]); err == nil && r.TransactionID == d.TransactionID && r.OpCode == dhcpv4.OpcodeBootReply {
			out = append(out, r)
		}
	}
}

// TestProxyBesideDnsmasq: dnsmasq, on its own "machine", is the network's
// DHCP server (addresses only); kickstand in proxy mode adds the boot
// options. A PXE client sees both offers, takes the address from dnsmasq,
// then asks kickstand's port 4011 for the boot file, as PXE ROMs do.
func TestProxyBesideDnsmasq(t *testing.T) {
	lab, ctx := enginetest.LabFor(t, "ksd4-proxy", vmtest.NoIPv6(), 2*time.Minute, "dnsmasq", "udhcpc")
	dns := lab.Name + "-dns"
	addNetns(t, dns)
	for _, argv := range [][]string{
		{"ip", "-n", lab.Srv, "link", "add", "ds0", "type", "veth", "peer", "name", "dns0", "netns", dns},
		{"ip", "-n", lab.Srv, "link", "set", "ds0", "master", lab.Bridge},
		{"ip", "-n", lab.Srv, "link", "set", "ds0", "up"},
		{"ip", "-n", dns, "addr", "add", "192.0.2.2/24", "dev", "dns0"},
		{"ip", "-n", dns, "link", "set", "dns0", "up"},
	} {
		run(t, argv...)
	}
	dir := t.TempDir()
	dm := lab.Cmd(ctx, dns, "dnsmasq", "--no-daemon", "--conf-file=/dev/null", "--port=0", "--interface=dns0", "--bind-interfaces",
		"--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,1h", "--dhcp-leasefile="+filepath.Join(dir, "leases"),
		"--pid-file="+filepath.Join(dir, "pid"), "--dhcp-authoritative", "--no-ping", "--log-dhcp")
	var dmLog strings.Builder
	dm.Stdout, dm.Stderr = &dmLog, &dmLog
	if err := dm.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { dm.Process.Kill(); dm.Wait() }()
	startServer(t, lab, "proxy", nil)

	// 1. An operating system's client (busybox udhcpc, no PXE class): the
	// proxy stays out of its way. (udhcpc cannot be the PXE client here: it
	// takes the first offer, and a proxy offer carries no address, which
	// PXE ROMs understand and udhcpc does not.)
	if err := lab.Run(ctx, "cli", "ip", "link", "set", vmtest.CliVeth, "address", "52:54:00:00:00:10"); err != nil {
		t.Fatal(err)
	}
	env := udhcpc(t, ctx, lab, "cli", vmtest.CliVeth)
	if env["serverid"] != "192.0.2.2" || !strings.HasPrefix(env["ip"], "192.0.2.1") || env["boot_file"] != "" {
		t.Errorf("udhcpc: ip %q from %q file %q, want a dnsmasq address and no boot file\n%s", env["ip"], env["serverid"], env["boot_file"], dmLog.String())
	}

	// 2. A PXE ROM's exchange, step by step.
	var conn *net.UDPConn
	err := vmtest.InNetns(lab.Cli, func() error {
		var err error
		conn, err = listenUDP(ctx, vmtest.CliVeth, 68)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hw, _ := net.ParseMAC("52:54:00:00:01:10")
	c := &pxeClient{conn: conn, mac: hw, mods: []dhcpv4.Modifier{dhcpv4.WithBroadcast(true), dhcpv4.WithOption(vcUEFI),
		dhcpv4.WithOption(archEFI64), dhcpv4.WithOption(uuid97)}}
	var fromDnsmasq, fromProxy *dhcpv4.DHCPv4
	for _, o := range c.offers(t, 3*time.Second) {
		switch o.ServerIdentifier().String() {
		case "192.0.2.2":
			fromDnsmasq = o
		case "192.0.2.1":
			fromProxy = o
		}
	}
	if fromDnsmasq == nil || fromProxy == nil {
		t.Fatalf("offers: dnsmasq %v, kickstand %v\ndnsmasq log:\n%s", fromDnsmasq != nil, fromProxy != nil, dmLog.String())
	}
	if fromDnsmasq.YourIPAddr.IsUnspecified() || fromDnsmasq.BootFileName != "" {
		t.Errorf("dnsmasq offer: yiaddr %v file %q", fromDnsmasq.YourIPAddr, fromDnsmasq.BootFileName)
	}
	if !fromProxy.YourIPAddr.IsUnspecified() || fromProxy.BootFileName != "ipxe.efi" || fromProxy.ClassIdentifier() != "PXEClient" ||
		!fromProxy.ServerIPAddr.Equal(net.IPv4(192, 0, 2, 1)) || len(fromProxy.Options.Get(dhcpv4.OptionVendorSpecificInformation)) == 0 {
		t.Errorf("proxy offer: %s", fromProxy.Summary())
	}
	// Take dnsmasq's address, then ask the boot server on 4011.
	addr := fromDnsmasq.YourIPAddr.String()
	if err := lab.Run(ctx, "cli", "ip", "addr", "replace", addr+"/24", "dev", vmtest.CliVeth); err != nil {
		t.Fatal(err)
	}
	bs, _ := dhcpv4.New(dhcpv4.WithHwAddr(hw), dhcpv4.WithMessageType(dhcpv4.MessageTypeRequest),
		dhcpv4.WithClientIP(fromDnsmasq.YourIPAddr), dhcpv4.WithOption(vcUEFI), dhcpv4.WithOption(archEFI64), dhcpv4.WithOption(uuid97))
	if _, err := conn.WriteToUDPAddrPort(bs.ToBytes(), netip.MustParseAddrPort("192.0.2.1:4011")); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 1500)
	for {
		n, from, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("no answer from port 4011: %v", err)
		}
		r, err := dhcpv4.FromBytes(buf[:n])
		if err != nil || r.TransactionID != bs.TransactionID {
			continue
		}
		if from.String() != "192.0.2.1:4011" || r.MessageType() != dhcpv4.MessageTypeAck || r.BootFileName != "ipxe.efi" || !r.YourIPAddr.IsUnspecified() {
			t.Errorf("4011 answer from %v: %s", from, r.Summary())
		}
		break
	}
	if err := ctx.Err(); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
