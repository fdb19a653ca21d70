package vmtest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestLab(t *testing.T, name string, opts ...LabOption) *Lab {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lab, err := NewLab(ctx, name, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := lab.Close(); err != nil {
			t.Errorf("lab close: %v", err)
		}
	})
	return lab
}

func netnsExists(name string) bool {
	_, err := os.Stat("/run/netns/" + name)
	return err == nil
}

func TestLab(t *testing.T) {
	RequireRoot(t)
	Need(t, "ip", "busybox")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A leftover from a "crashed" run, with a process still inside, must not stop NewLab.
	crashed, err := NewLab(ctx, "ksvt-lab")
	if err != nil {
		t.Fatal(err)
	}
	sleeper := crashed.Cmd(ctx, "srv", "sleep", "600")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { sleeper.Wait(); close(exited) }()

	lab := newTestLab(t, "ksvt-lab")
	select {
	case <-exited:
	case <-time.After(5 * time.Second):
		t.Error("a process of the leftover lab still runs after NewLab")
	}

	addrs, err := lab.Output(ctx, "srv", "ip", "-o", "addr", "show", "dev", lab.Bridge)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{SrvIPv4CIDR, SrvIPv6CIDR} {
		if !strings.Contains(addrs, want) {
			t.Errorf("bridge lacks %s: %s", want, addrs)
		}
	}
	if err := lab.Run(ctx, "cli", "ip", "addr", "add", "192.0.2.50/24", "dev", CliVeth); err != nil {
		t.Fatal(err)
	}
	if err := lab.Run(ctx, "cli", "ip", "addr", "add", "2001:db8::50/64", "dev", CliVeth); err != nil {
		t.Fatal(err)
	}

	// A Go server listening inside srv, reached by busybox wget from cli, over v4 and v6.
	for _, addr := range []string{"192.0.2.1:8080", "[2001:db8::1]:8080"} {
		ln, err := lab.Listen("srv", "tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "hello from %s", r.Host)
		})}
		go srv.Serve(ln)
		defer srv.Close()
		out, err := lab.Output(ctx, "cli", "busybox", "wget", "-q", "-O", "-", "http://"+addr+"/")
		if err != nil || out != "hello from "+addr {
			t.Errorf("wget %s from cli: %q, %v", addr, out, err)
		}
	}
	// The host's own namespace must not see the lab's addresses.
	if ln, err := net.Listen("tcp", "192.0.2.1:0"); err == nil {
		ln.Close()
		t.Error("192.0.2.1 is bindable in the host namespace; the lab leaked")
	}

	if err := lab.AddTap(ctx, "kstap-test"); err != nil {
		t.Fatal(err)
	}
	if err := lab.AddTap(ctx, "this-name-is-too-long"); err == nil {
		t.Error("AddTap accepted a 21-character name")
	}

	if err := lab.Close(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if netnsExists(lab.Srv) || netnsExists(lab.Cli) {
		t.Error("namespaces still exist after Close")
	}
	if _, err := NewLab(ctx, "Bad_Name"); err == nil {
		t.Error("NewLab accepted an invalid name")
	}
}

// ksServer is the HTTP side of a fake kickstand: it serves a kickstart and records callbacks.
type ksServer struct {
	ks      string
	mu      sync.Mutex
	fetches []string // "path user-agent"
	posts   map[string]string
}

func (s *ksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case r.URL.Path == "/ks.cfg":
		s.fetches = append(s.fetches, r.URL.Path+" "+r.UserAgent())
		io.WriteString(w, s.ks)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/cb/"):
		s.posts[r.URL.Path] = string(body)
		io.WriteString(w, "ok\n")
	case r.URL.Path == "/file":
		io.WriteString(w, "payload-7f3a")
	default:
		http.NotFound(w, r)
	}
}

func (s *ksServer) post(path string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	body, ok := s.posts[path]
	return body, ok
}

const testKickstart = `# kickstart for vmtest
text
%pre
echo PRE-SHOULD-NOT-RUN
%end
%post --log=/root/ks-post.log
curl -fsS --retry 3 --retry-delay 1 -X POST --data-binary @/proc/cmdline {{BASE}}/cb/built
echo "fetched $(curl -fsS {{BASE}}/file)"
%end
%post --interpreter=/usr/bin/python3
print("python should be skipped")
%end
%post
echo third section
exit 3
%end
%onerror
echo ONERROR-SHOULD-NOT-RUN
%end
`

// bootInstaller serves testKickstart from base (an address in the lab's srv namespace), boots the
// test installer with cmdline, and checks every marker the run must print.
func bootInstaller(t *testing.T, lab *Lab, listen, base string, opts VMOptions) *VMResult {
	t.Helper()
	ks := strings.ReplaceAll(testKickstart, "{{BASE}}", base)
	srv := &ksServer{ks: ks, posts: map[string]string{}}
	ln, err := lab.Listen("srv", "tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	opts.Dir = t.TempDir()
	if os.Getenv("KSTEST_SERIAL") == "1" {
		opts.Log = os.Stderr // watch the console live: KSTEST_SERIAL=1 go test -v -run ...
	}
	opts.Timeout = 3 * time.Minute
	vm, err := StartVM(ctx, lab, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	fetched, err := vm.WaitFor(ctx, regexp.MustCompile(`KSTEST: ks-fetch (ok|failed)`))
	if err != nil {
		t.Fatalf("%v\n%s", err, vm.Serial())
	}
	t.Logf("%s", fetched)
	res := vm.Wait()
	t.Logf("QEMU exit %d after %s; serial log %s", res.ExitCode, res.Elapsed.Round(100*time.Millisecond), res.SerialPath)
	if res.ExitCode != 0 || res.TimedOut {
		t.Fatalf("QEMU exit %d timedout=%v stderr=%s\n%s", res.ExitCode, res.TimedOut, res.Stderr, res.Serial)
	}
	want := []*regexp.Regexp{
		regexp.MustCompile(`^modules loaded=.*` + map[string]string{"e1000": "e1000", "virtio-net-pci": "virtio_net"}[vm.Opts.NIC]),
		regexp.MustCompile(`^ks-fetch ok bytes=` + fmt.Sprint(len(ks)) + ` url=` + regexp.QuoteMeta(base+"/ks.cfg") + `$`),
		regexp.MustCompile(`^post rc=0 n=1$`),
		regexp.MustCompile(`^post skipped n=2 interpreter=/usr/bin/python3$`),
		regexp.MustCompile(`^post rc=3 n=3$`),
		regexp.MustCompile(`^done uptime=`),
	}
	markers := res.Markers()
	next := 0
	for _, m := range markers {
		if next < len(want) && want[next].MatchString(m) {
			next++
		}
	}
	if next < len(want) {
		t.Errorf("marker /%s/ missing or out of order; markers:\n%s", want[next], strings.Join(markers, "\n"))
	}
	for _, line := range []string{"fetched payload-7f3a", "third section"} {
		if !strings.Contains(res.Serial, line+"\n") {
			t.Errorf("serial lacks %q", line)
		}
	}
	for _, line := range []string{"PRE-SHOULD-NOT-RUN", "ONERROR-SHOULD-NOT-RUN", "python should be skipped\n"} {
		if strings.Contains(res.Serial, line) {
			t.Errorf("serial has %q", line)
		}
	}
	body, ok := srv.post("/cb/built")
	if !ok {
		t.Errorf("the first %%post section's callback never arrived")
	} else if !strings.Contains(body, "inst.ks="+base+"/ks.cfg") {
		t.Errorf("callback body %q lacks the kernel command line", body)
	}
	srv.mu.Lock()
	if len(srv.fetches) != 1 || !strings.Contains(srv.fetches[0], "curl/") {
		t.Errorf("kickstart fetches: %q, want exactly one by a curl user agent", srv.fetches)
	}
	srv.mu.Unlock()
	return res
}

func TestBootInstaller(t *testing.T) {
	NeedVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	kernel, initrd, err := Installer(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	t.Run("bios-ipv4-static", func(t *testing.T) {
		t.Parallel()
		lab := newTestLab(t, "ksvt-b4")
		bootInstaller(t, lab, "192.0.2.1:8080", "http://192.0.2.1:8080", VMOptions{
			Name: "b4", Kernel: kernel, Initrd: initrd,
			Append: "console=ttyS0 net.ifnames=0 ip=192.0.2.10::192.0.2.1:255.255.255.0:t1:eth0:none " +
				"inst.ks=http://192.0.2.1:8080/ks.cfg",
		})
	})
	t.Run("bios-ipv6-static", func(t *testing.T) {
		t.Parallel()
		lab := newTestLab(t, "ksvt-b6", IPv6Only())
		res := bootInstaller(t, lab, "[2001:db8::1]:8080", "http://[2001:db8::1]:8080", VMOptions{
			Name: "b6", Kernel: kernel, Initrd: initrd,
			Append: "console=ttyS0 net.ifnames=0 ip=[2001:db8::10]::[2001:db8::1]:64:t1:eth0:none " +
				"inst.ks=http://[2001:db8::1]:8080/ks.cfg",
		})
		if res.Find(regexp.MustCompile(`KSTEST: net route6 default via 2001:db8::1 dev eth0`)) == "" {
			t.Error("no IPv6 default route via the ip= gateway in the net report")
		}
	})
	t.Run("uefi-virtio-dhcp-overlay-hooks", func(t *testing.T) {
		t.Parallel()
		Need(t, OVMFCode, OVMFVars)
		// A second cpio appended to the initrd, as kickstand's overlay will be: an online hook
		// that sorts before the fetch, and a finished hook that succeeds on its third call.
		overlay := filepath.Join(t.TempDir(), "overlay")
		hooks := filepath.Join(overlay, "usr/lib/dracut/hooks/initqueue")
		for file, body := range map[string]string{
			"online/10-overlay-first.sh": `echo "KSTEST: overlay online iface=$1 before-fetch=$([ -e /run/install/ks.cfg ] && echo no || echo yes)"`,
			"finished/50-overlay.sh":     `n=$(cat /tmp/fin 2>/dev/null || echo 0); echo $((n+1)) >/tmp/fin; [ "$n" -ge 2 ]`,
		} {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(hooks, file)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(hooks, file), []byte(body+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		combined := filepath.Join(t.TempDir(), "initrd+overlay.img")
		script := fmt.Sprintf("cat %s >%s && cd %s && find . -mindepth 1 | sort | cpio --quiet -o -H newc -R 0:0 | gzip >>%s",
			initrd, combined, overlay, combined)
		if out, err := exec.CommandContext(t.Context(), "sh", "-c", script).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		lab := newTestLab(t, "ksvt-u4")
		// busybox udhcpd stands in for kickstand's DHCP here; the installer has no ip= at all,
		// so it must fall back to DHCP on eth0 as dracut does.
		dir := t.TempDir()
		conf := filepath.Join(dir, "udhcpd.conf")
		if err := os.WriteFile(conf, []byte(fmt.Sprintf(`interface %s
start 192.0.2.100
end 192.0.2.199
static_lease %s 192.0.2.11
lease_file %s/leases
pidfile %s/udhcpd.pid
siaddr 192.0.2.1
boot_file ipxe.efi
option subnet 255.255.255.0
option router 192.0.2.1
option dns 192.0.2.53 198.51.100.53
option hostname uefi1
option lease 600
`, lab.Bridge, DefaultUEFIMAC, dir, dir)), 0o644); err != nil {
			t.Fatal(err)
		}
		dhcpd := lab.Cmd(t.Context(), "srv", "busybox", "udhcpd", "-f", "-a", "100", conf)
		if err := dhcpd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dhcpd.Process.Kill(); dhcpd.Wait() })
		res := bootInstaller(t, lab, "192.0.2.1:8080", "http://192.0.2.1:8080", VMOptions{
			Name: "u4", Firmware: UEFI, Kernel: kernel, Initrd: combined,
			Append: "console=ttyS0 net.ifnames=0 inst.ks=http://192.0.2.1:8080/ks.cfg",
		})
		for _, re := range []string{
			`KSTEST: dhcp4 iface=eth0 ip=192.0.2.11 mask=24 router=192.0.2.1 dns=192.0.2.53,198.51.100.53 ` +
				`domain= hostname=uefi1 server=192.0.2.1 lease=600 siaddr=192.0.2.1 sname= boot_file=ipxe.efi`,
			`KSTEST: net resolv nameserver 192.0.2.53 nameserver 198.51.100.53`,
			`KSTEST: overlay online iface=eth0 before-fetch=yes`,
			`KSTEST: hook online 10-overlay-first.sh rc=0`,
			`KSTEST: initqueue finished after=[1-9]`,
		} {
			if res.Find(regexp.MustCompile(re)) == "" {
				t.Errorf("serial lacks /%s/", re)
			}
		}
	})
	t.Run("bios-ipv6-no-gateway-race", func(t *testing.T) {
		t.Parallel()
		// Seed 000 race #1: a static v6 address without a gateway and a kickstart server off-link.
		// No router advertises a route, so the single fetch must fail the way dracut's does, and
		// the installer must still end cleanly.
		lab := newTestLab(t, "ksvt-r6", IPv6Only())
		if err := lab.Run(t.Context(), "srv", "ip", "addr", "add", "2001:db8:1::1/128", "dev", "lo"); err != nil {
			t.Fatal(err)
		}
		ln, err := lab.Listen("srv", "tcp", "[2001:db8:1::1]:8080")
		if err != nil {
			t.Fatal(err)
		}
		hits := make(chan string, 10)
		hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits <- r.URL.Path })}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })
		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		res, err := BootVM(ctx, lab, VMOptions{
			Name: "r6", Dir: t.TempDir(), Kernel: kernel, Initrd: initrd,
			Append: "console=ttyS0 net.ifnames=0 ip=[2001:db8::10]:::64:::none inst.ks=http://[2001:db8:1::1]:8080/ks.cfg",
		})
		if err != nil {
			t.Fatalf("%v\n%s", err, res.Serial)
		}
		t.Logf("QEMU exit %d after %s", res.ExitCode, res.Elapsed.Round(100*time.Millisecond))
		for _, re := range []string{
			`(?m)^KSTEST: ks-fetch failed url=http://\[2001:db8:1::1\]:8080/ks.cfg err=.*Network is unreachable`,
			`(?m)^KSTEST: hook online 11-fetch-kickstart-net.sh rc=1$`,
			`(?m)^KSTEST: done `,
		} {
			if res.Find(regexp.MustCompile(re)) == "" {
				t.Errorf("serial lacks /%s/; markers:\n%s", re, strings.Join(res.Markers(), "\n"))
			}
		}
		if res.Find(regexp.MustCompile(`KSTEST: net route6 default`)) != "" {
			t.Error("the VM has an IPv6 default route although nothing advertised one")
		}
		select {
		case p := <-hits:
			t.Errorf("the server was reached (%s) without a route", p)
		default:
		}
	})
	t.Run("bios-pxe-dnsmasq", func(t *testing.T) {
		t.Parallel()
		Need(t, "dnsmasq")
		// The network-boot path of StartVM (no Kernel): SeaBIOS runs QEMU's iPXE ROM, which gets
		// an iPXE script URL from dnsmasq (a stand-in until kickstand's DHCP exists) and loads the
		// installer over HTTP; the installer then takes its address by DHCP too.
		lab := newTestLab(t, "ksvt-px")
		dir := t.TempDir()
		dnsmasq := lab.Cmd(t.Context(), "srv", "dnsmasq", "--no-daemon", "--conf-file=/dev/null",
			"--user=root", "--port=0", "--no-resolv", "--bind-interfaces", "--interface="+lab.Bridge,
			"--dhcp-range=192.0.2.100,192.0.2.199,255.255.255.0,10m", "--dhcp-host="+DefaultBIOSMAC+",192.0.2.10",
			"--no-ping", "--dhcp-leasefile="+dir+"/leases", "--pid-file="+dir+"/pid",
			"--dhcp-boot=http://192.0.2.1:8080/boot.ipxe")
		if err := dnsmasq.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { dnsmasq.Process.Kill(); dnsmasq.Wait() })
		ks := strings.ReplaceAll(testKickstart, "{{BASE}}", "http://192.0.2.1:8080")
		srv := &ksServer{ks: ks, posts: map[string]string{}}
		mux := http.NewServeMux()
		mux.Handle("/", srv)
		mux.HandleFunc("/boot.ipxe", func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "#!ipxe\n"+
				"kernel http://192.0.2.1:8080/vmlinuz console=ttyS0 net.ifnames=0 ip=dhcp inst.ks=http://192.0.2.1:8080/ks.cfg\n"+
				"initrd http://192.0.2.1:8080/initrd.img\n"+
				"boot\n")
		})
		mux.HandleFunc("/vmlinuz", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, kernel) })
		mux.HandleFunc("/initrd.img", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, initrd) })
		ln, err := lab.Listen("srv", "tcp", "192.0.2.1:8080")
		if err != nil {
			t.Fatal(err)
		}
		hs := &http.Server{Handler: mux}
		go hs.Serve(ln)
		t.Cleanup(func() { hs.Close() })

		ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
		defer cancel()
		res, err := BootVM(ctx, lab, VMOptions{Name: "px", Dir: t.TempDir(), Timeout: 3 * time.Minute})
		if err != nil {
			t.Fatalf("%v\n%s", err, res.Serial)
		}
		t.Logf("QEMU exit %d after %s", res.ExitCode, res.Elapsed.Round(100*time.Millisecond))
		for _, re := range []string{
			`iPXE`,
			`KSTEST: dhcp4 iface=eth0 ip=192.0.2.10 `,
			`KSTEST: ks-fetch ok bytes=`,
			`KSTEST: post rc=0 n=1`,
			`KSTEST: done `,
		} {
			if res.Find(regexp.MustCompile(re)) == "" {
				t.Errorf("serial lacks /%s/; markers:\n%s", re, strings.Join(res.Markers(), "\n"))
			}
		}
		if _, ok := srv.post("/cb/built"); !ok {
			t.Error("no callback after a network boot")
		}
	})
}
