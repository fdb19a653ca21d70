package main

import (
	"context"
	"encoding/json"
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
	"syscall"
	"testing"
	"time"
)

const reloadConfig = `
server:
  http: "127.0.0.1:%d"
  address_v4: 127.0.0.1
  data_dir: data
  templates: templates
  api_open_reads: true
%s
distros:
  - name: el9
    release: rhel9
    arch: x86_64
    tree: tree
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p
    distro: el9
    kickstart: host.ks
hosts:
  - name: lo2.example.com
    macs: ["52:54:00:00:00:20"]
    ipv4: 127.0.0.2/8
    profile: p
    netboot: install
`

// Issue 16 (item 3), with the real binary: a reload that changed
// server.http made boot scripts advertise a port nothing listened on, and
// enabling tftp: did nothing until a restart, silently. Now the listener
// moves (the new port answers before any URL names it, the old one
// closes), TFTP starts, what cannot change live says "restart required"
// in the log, doctor and the API, a refused file is logged once, and the
// host commands keep working from the last good inventory meanwhile.
func TestReloadTellsTheTruth(t *testing.T) {
	needTool(t, "curl")
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "kickstand.yaml")
	portA, portB, tftpPort, syslogPort := freePort(t), freePort(t), freeUDPPort(t), freePort(t)
	moved := fmt.Sprintf("tftp:\n  enabled: true\n  listen: \"127.0.0.1:%d\"\nsyslog:\n  enabled: true\n  listen: \"127.0.0.1:%d\"\n", tftpPort, syslogPort)
	write := func(port int, extra string) {
		t.Helper()
		// Written beside and renamed into place, as editors do: the
		// watcher never sees half a file.
		tmp := filepath.Join(dir, ".kickstand.yaml.tmp")
		if err := os.WriteFile(tmp, []byte(fmt.Sprintf(reloadConfig, port, extra)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, cfg); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(dir, "tree"), 0o755)
	os.WriteFile(filepath.Join(dir, "tree", "vmlinuz"), []byte("kernel"), 0o644)
	os.WriteFile(filepath.Join(dir, "tree", "initrd.img"), []byte("initrd"), 0o644)
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "host.ks"), []byte("# {{ .host.name }}\n{{ snippet \"network\" }}\n"), 0o644)
	write(portA, "")
	p := startServe(t, bin, cfg)
	c := client("127.0.0.2")
	urlPort := regexp.MustCompile(`http://127\.0\.0\.1:(\d+)/`)
	bootScript := func(port int) (string, error) {
		resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/boot.ipxe", port))
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	waitLog := func(what string, n int) {
		t.Helper()
		if !eventually(func() bool { return strings.Count(p.log(), what) >= n }) {
			t.Fatalf("no %q (#%d) in the log:\n%s", what, n, p.log())
		}
	}
	if s, err := bootScript(portA); err != nil || !strings.Contains(s, fmt.Sprintf("http://127.0.0.1:%d/", portA)) {
		t.Fatalf("boot.ipxe on the first port: %v\n%s", err, s)
	}

	// No boot script ever advertises a port that is not listening yet:
	// a watcher asks on whichever port answers, all through the move, and
	// dials any other port it is told. (The port it asked on was
	// listening when it answered; it may close a moment later.)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var lies []string
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 2000 && ctx.Err() == nil; i++ {
			asked := portA
			s, err := bootScript(portA)
			if err != nil {
				asked = portB
				s, err = bootScript(portB)
			}
			if err != nil {
				continue
			}
			for _, m := range urlPort.FindAllStringSubmatch(s, -1) {
				if m[1] == fmt.Sprint(asked) {
					continue
				}
				conn, err := net.DialTimeout("tcp", "127.0.0.1:"+m[1], time.Second)
				if err != nil {
					lies = append(lies, fmt.Sprintf("advertised port %s does not answer: %v", m[1], err))
					continue
				}
				conn.Close()
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	time.Sleep(100 * time.Millisecond)
	write(portB, moved)
	waitLog("config reloaded", 1)
	time.Sleep(200 * time.Millisecond)
	stop()
	wg.Wait()
	for _, l := range lies {
		t.Error(l)
	}
	if s, err := bootScript(portB); err != nil || !strings.Contains(s, fmt.Sprintf("http://127.0.0.1:%d/", portB)) || strings.Contains(s, fmt.Sprintf(":%d/", portA)) {
		t.Fatalf("boot.ipxe on the new port: %v\n%s", err, s)
	}
	if !eventually(func() bool { _, err := bootScript(portA); return err != nil }) {
		t.Error("the old port still answers after the reload")
	}
	// TFTP, enabled by the reload, serves a real client.
	out, err := exec.Command("curl", "-sS", "--fail", "--interface", "127.0.0.2", fmt.Sprintf("tftp://127.0.0.1:%d/pxelinux.cfg/default", tftpPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "lo2.example.com") {
		t.Fatalf("tftp after the reload: %v\n%s\n%s", err, out, p.log())
	}
	// Syslog, enabled by the reload: advertised to the installer, and
	// what it sends lands on the host's timeline.
	if s, _ := bootScript(portB); !strings.Contains(s, fmt.Sprintf("inst.syslog=127.0.0.1:%d", syslogPort)) {
		t.Errorf("boot script does not name the syslog listener:\n%s", s)
	}
	sc, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.2")}, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: syslogPort})
	if err != nil {
		t.Fatal(err)
	}
	sc.Write([]byte("<14>anaconda: moved syslog works"))
	sc.Close()
	if !eventually(func() bool {
		out, _ := exec.Command(bin, "host", "timeline", "--config", cfg, "lo2.example.com").CombinedOutput()
		return strings.Contains(string(out), "moved syslog works")
	}) {
		t.Error("a syslog line sent after the reload is not on the host's timeline")
	}
	if strings.Contains(p.log(), "restart required") {
		t.Errorf("a restart was asked for listeners that moved:\n%s", p.log())
	}

	// What cannot change while serving is kept, and said everywhere.
	write(portB, strings.Replace(moved, "syslog:\n", "  max_transfers: 7\nsyslog:\n", 1))
	waitLog("restart required for tftp.max_transfers", 1)
	var st struct {
		Listening       map[string]string `json:"listening"`
		RestartRequired []struct {
			Field   string `json:"field"`
			Running string `json:"running"`
			InFile  string `json:"in_file"`
		} `json:"restart_required"`
		Rejected *struct{ Error string } `json:"rejected"`
	}
	status := func() {
		t.Helper()
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/server", portB))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		st.Rejected = nil
		if err := json.NewDecoder(resp.Body).Decode(&st); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /api/v1/server: %d %v", resp.StatusCode, err)
		}
	}
	status()
	if len(st.RestartRequired) != 1 || st.RestartRequired[0].Field != "tftp.max_transfers" || st.RestartRequired[0].Running != "512" || st.RestartRequired[0].InFile != "7" ||
		st.Listening["http"] != fmt.Sprintf("127.0.0.1:%d", portB) || st.Listening["tftp"] != fmt.Sprintf("127.0.0.1:%d", tftpPort) {
		t.Errorf("API status: %+v", st)
	}
	doc, _ := exec.Command(bin, "doctor", "--config", cfg).CombinedOutput()
	if !strings.Contains(string(doc), `serve: restart required for tftp.max_transfers (running: 512; file: 7)`) ||
		!strings.Contains(string(doc), fmt.Sprintf("http 127.0.0.1:%d", portB)) {
		t.Errorf("doctor:\n%s", doc)
	}

	// A refused file: logged once however often it is seen, while the
	// CLI's read-only commands and state changes use the last good
	// inventory in the store.
	os.WriteFile(cfg, []byte(strings.Replace(fmt.Sprintf(reloadConfig, portB, ""), "    ipv4: 127.0.0.2/8\n", "    ipaddr: 127.0.0.2/8\n", 1)), 0o644)
	waitLog("reload rejected", 1)
	for range 3 {
		p.cmd.Process.Signal(syscall.SIGHUP) // re-reads the same refused file
	}
	time.Sleep(3 * time.Second) // longer than the 2 s poll, and the signals
	if n := strings.Count(p.log(), "reload rejected"); n != 1 {
		t.Errorf("the refused file was logged %d times:\n%s", n, p.log())
	}
	if !strings.Contains(p.log(), `unknown key \"ipaddr\" (did you mean \"ipv4\"?)`) {
		t.Errorf("the rejection does not say file:line: field:\n%s", p.log())
	}
	status()
	if st.Rejected == nil || !strings.Contains(st.Rejected.Error, "kickstand.yaml:23: hosts[0].ipaddr: unknown key") {
		t.Errorf("API status while refused: %+v", st)
	}
	for _, args := range [][]string{
		{"host", "list"}, {"host", "show", "lo2.example.com"}, {"host", "timeline", "lo2.example.com"},
		{"render", "kickstart", "lo2.example.com"},
		{"host", "set-state", "lo2.example.com", "local"}, {"host", "build", "lo2.example.com"},
	} {
		cmd := exec.Command(bin, append(args, "--config", cfg)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		want := "lo2.example.com"
		if args[1] == "timeline" {
			want = "http.script"
		}
		if err != nil || !strings.Contains(string(out), want) {
			t.Errorf("%v while the file is refused: %v\n%s\n%s", args, err, out, stderr.String())
		}
		if !strings.Contains(stderr.String(), "using the last good inventory in the store") || !strings.Contains(stderr.String(), "hosts[0].ipaddr") {
			t.Errorf("%v does not say it uses the last good inventory:\n%s", args, stderr.String())
		}
	}
	// Another refusal is news: logged.
	os.WriteFile(cfg, []byte(strings.Replace(fmt.Sprintf(reloadConfig, portB, ""), "    netboot: install\n", "    netboot: instal\n", 1)), 0o644)
	waitLog("reload rejected", 2)
	// Fixed: in force again, and the refusal is gone.
	write(portB, moved)
	waitLog("config reloaded", 3)
	status()
	if st.Rejected != nil || len(st.RestartRequired) != 0 {
		t.Errorf("API status after the fix: %+v", st)
	}
}
