package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
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

// buildBinary builds kickstand once per test run: every test that runs the
// real binary shares the build (TestMain removes it).
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "kickstand-test-bin")
		if binErr != nil {
			return
		}
		bin := filepath.Join(binDir, "kickstand")
		out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "kickstand")
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func freeUDPPort(t *testing.T) int {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

// needTool skips (or, under make test, fails) when a real client is missing.
func needTool(t *testing.T, name string) {
	if _, err := exec.LookPath(name); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatalf("%s is required (make test installs it)", name)
		}
		t.Skipf("%s not installed", name)
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

const serveConfig = `
tftp:
  enabled: true
  listen: "127.0.0.1:%d"
server:
  http: "127.0.0.1:%d"
  address_v4: 127.0.0.1
  data_dir: data
  templates: templates
distros:
  - name: el9
    release: rhel9
    arch: x86_64
    tree: tree
    kernel: images/pxeboot/vmlinuz
    initrd: [images/pxeboot/initrd.img]
profiles:
  - name: p
    distro: el9
    kickstart: host.ks
hosts:
  - name: lo2.example.com
    macs: ["52:54:00:00:00:20"]
    uuid: 8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a20
    ipv4: 127.0.0.2/8
    profile: p
    netboot: install
  - name: other.example.com
    macs: ["52:54:00:00:00:21"]
    ipv4: 127.0.0.3/8
    profile: p
    netboot: install
`

type kickstandProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	addr chan string
}

func (p *kickstandProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

func startServe(t *testing.T, bin, config string) *kickstandProc {
	t.Helper()
	p := &kickstandProc{cmd: exec.Command(bin, "serve", "--config", config), addr: make(chan string, 1)}
	stderr, _ := p.cmd.StderrPipe()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.cmd.Process.Kill(); p.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		re := regexp.MustCompile(`http listening"? addr=(\S+)`)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				p.addr <- m[1]
			}
		}
	}()
	select {
	case a := <-p.addr:
		_ = a
	case <-time.After(20 * time.Second):
		t.Fatalf("kickstand did not start:\n%s", p.log())
	}
	return p
}

// client fetches from a given loopback source address, so the server sees
// the "client IP" a host is known by.
func client(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url string, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawGet sends a request line as written, so the client library cannot
// clean the path before the server sees it.
func rawGet(t *testing.T, addr, path string) int {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", path)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestServeIntegration(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	port, tftpPort := freePort(t), freeUDPPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	cfg := filepath.Join(dir, "kickstand.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(serveConfig, tftpPort, port)), 0o644)
	tree := filepath.Join(dir, "tree", "images", "pxeboot")
	os.MkdirAll(tree, 0o755)
	kernel := make([]byte, 1<<20)
	rand.Read(kernel)
	os.WriteFile(filepath.Join(tree, "vmlinuz"), kernel, 0o644)
	os.WriteFile(filepath.Join(tree, "initrd.img"), []byte("initrd"), 0o644)
	os.WriteFile(filepath.Join(dir, "secret"), []byte("SECRET"), 0o644)
	os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "tree", "escape"))
	os.MkdirAll(filepath.Join(dir, "templates"), 0o755)
	os.WriteFile(filepath.Join(dir, "templates", "host.ks"), []byte("# {{ .host.name }}\n{{ snippet \"network\" }}\n"), 0o644)

	p := startServe(t, bin, cfg)
	c := client("127.0.0.2")

	if code, body := get(t, c, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}

	// iPXE script by MAC; the kickstart URL carries the build token.
	code, script := get(t, c, base+"/boot.ipxe")
	m := regexp.MustCompile(`inst\.ks=(\S+)`).FindStringSubmatch(script)
	if code != 200 || m == nil || !strings.Contains(script, base+"/distros/el9/images/pxeboot/vmlinuz") {
		t.Fatalf("boot.ipxe: %d\n%s", code, script)
	}
	ksURL := m[1]

	// Every config name each loader looks up.
	install := "Install lo2.example.com"
	for _, name := range []string{
		"pxelinux.cfg/8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a20",
		"pxelinux.cfg/01-52-54-00-00-00-20",
		"pxelinux.cfg/7F000002", "pxelinux.cfg/7F00000", "pxelinux.cfg/7F", "pxelinux.cfg/7",
		"pxelinux.cfg/default",
		"grub.cfg-8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a20",
		"grub.cfg-01-52-54-00-00-00-20", "grub.cfg-52:54:00:00:00:20",
		"grub.cfg-7F000002", "grub.cfg-7F0", "grub.cfg", "grub/grub.cfg-01-52-54-00-00-00-20",
	} {
		code, body := get(t, c, base+"/"+name)
		if code != 200 || !strings.Contains(body, install) {
			t.Errorf("%s: %d\n%s", name, code, body)
		}
		if strings.HasPrefix(name, "grub") && (!strings.Contains(body, "linux /distros/el9/images/pxeboot/vmlinuz") || strings.Contains(body, "linuxefi")) {
			t.Errorf("%s: not a linux/initrd GRUB config:\n%s", name, body)
		}
	}
	// The machine is who its address says, whatever name its loader asks
	// for: a MAC in a file name is the loader's lookup order, not proof.
	if code, body := get(t, c, base+"/grub.cfg-01-52-54-00-99-99-99"); code != 200 || !strings.Contains(body, install) {
		t.Errorf("another MAC's name from lo2's address: %d\n%s", code, body)
	}
	// From an address kickstand cannot tie to a host, a name that names a
	// machine is "not found", so the loader moves on to the menu; so is a
	// hex name that is not the client's.
	for _, name := range []string{"pxelinux.cfg/01-52-54-00-00-00-20", "grub.cfg-01-52-54-00-00-00-20", "grub.cfg-8c0f6d52-5b9e-4b71-9a3d-2f1e0c9b8a20"} {
		if code, body := get(t, client("127.0.0.9"), base+"/"+name); code != 404 {
			t.Errorf("%s from an unknown address: %d, want 404\n%s", name, code, body)
		}
	}
	if code, _ := get(t, c, base+"/pxelinux.cfg/7F000003"); code != 404 {
		t.Errorf("a hex name that is not the client's: %d, want 404", code)
	}
	// An unknown client's default config is the menu, listing installing hosts.
	if code, body := get(t, client("127.0.0.9"), base+"/pxelinux.cfg/default"); code != 200 || !strings.Contains(body, "MENU TITLE") || !strings.Contains(body, install) {
		t.Errorf("menu: %d\n%s", code, body)
	}

	// The kickstart, only under the token.
	if code, body := get(t, c, ksURL); code != 200 || !strings.Contains(body, "# lo2.example.com") || !strings.Contains(body, "--ip=127.0.0.2") {
		t.Errorf("kickstart: %d\n%s", code, body)
	}
	for _, bad := range []string{base + "/ks/", base + "/ks/WRONGTOKEN", base + "/ks/lo2.example.com"} {
		if code, body := get(t, c, bad); code != 404 || strings.Contains(body, "lo2") {
			t.Errorf("%s: %d %q, want a bare 404", bad, code, body)
		}
	}

	// The kernel with a Range request.
	if code, body := get(t, c, base+"/distros/el9/images/pxeboot/vmlinuz", "Range", "bytes=1000-1999"); code != 206 || body != string(kernel[1000:2000]) {
		t.Errorf("range: %d, %d bytes", code, len(body))
	}
	resp, err := c.Head(base + "/distros/el9/images/pxeboot/vmlinuz")
	if err != nil || resp.ContentLength != int64(len(kernel)) {
		t.Errorf("HEAD content-length = %v, %v", resp, err)
	}

	// Path escapes get 404, never the file.
	hp := fmt.Sprintf("127.0.0.1:%d", port)
	for _, path := range []string{
		"/distros/el9/../../secret", "/distros/el9/%2e%2e/%2e%2e/secret", "/distros/el9/%2e%2e%2f%2e%2e%2fsecret",
		"/distros/el9/escape", "/distros/el9/" + dir + "/secret", "//" + dir + "/secret", "/distros/el9/..%5c..%5csecret",
		"/distros/../secret", "/distros/el9/images/../../../secret",
	} {
		if code := rawGet(t, hp, path); code != 404 && code != 400 {
			t.Errorf("%s: %d, want 404", path, code)
		}
	}

	// The same names over TFTP, with a real client (curl), from the host's
	// own address so the timeline can attribute them.
	needTool(t, "curl")
	tftpGet := func(name string) ([]byte, error) {
		return exec.Command("curl", "-sS", "--fail", "--interface", "127.0.0.2", "--tftp-blksize", "1468",
			fmt.Sprintf("tftp://127.0.0.1:%d/%s", tftpPort, name)).Output()
	}
	if b, err := tftpGet("pxelinux.cfg/01-52-54-00-00-00-20"); err != nil || !strings.Contains(string(b), install) {
		t.Errorf("tftp pxelinux.cfg: %v\n%s", err, b)
	}
	if b, err := tftpGet("distros/el9/images/pxeboot/vmlinuz"); err != nil || !bytes.Equal(b, kernel) {
		t.Errorf("tftp kernel: %v, %d bytes", err, len(b))
	}
	if b, err := tftpGet("distros/el9/escape"); err == nil {
		t.Errorf("tftp served a symlink out of the tree: %q", b)
	}
	if _, err := os.Stat("/usr/lib/ipxe/undionly.kpxe"); err == nil {
		want, _ := os.ReadFile("/usr/lib/ipxe/undionly.kpxe")
		if b, err := tftpGet("undionly.kpxe"); err != nil || !bytes.Equal(b, want) {
			t.Errorf("tftp loader undionly.kpxe: %v, %d bytes", err, len(b))
		}
	}

	// The timeline has the host's requests, in order.
	deadline := time.Now().Add(5 * time.Second)
	var tl string
	for time.Now().Before(deadline) {
		out, _ := exec.Command(bin, "host", "timeline", "--config", cfg, "lo2.example.com").CombinedOutput()
		tl = string(out)
		if strings.Contains(tl, "tftp.file") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("timeline:\n%s", tl)
	order := []string{"http.script", "http.config", "http.kickstart", "http.kernel", "tftp.file"}
	last := -1
	for _, k := range order {
		i := strings.Index(tl, k)
		if i < 0 || i < last {
			t.Errorf("timeline lacks %s in order %v:\n%s", k, order, tl)
			break
		}
		last = i
	}
	if strings.Contains(tl, ksURL[strings.LastIndex(ksURL, "/")+1:]) {
		t.Errorf("timeline leaks the build token:\n%s", tl)
	}

	// Callbacks need the token: a wrong one is a bare 404 and changes nothing.
	post := func(url string) (int, string) {
		resp, err := c.Post(url, "text/plain", strings.NewReader("log line 1\nlog line 2\n"))
		if err != nil {
			t.Fatalf("POST %s: %v", url, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	token := ksURL[strings.LastIndex(ksURL, "/")+1:]
	for _, bad := range []string{base + "/cb/WRONG/built", base + "/cb/" + token + "/nope", base + "/cb//built"} {
		if code, body := post(bad); code != 404 || strings.Contains(body, "lo2") {
			t.Errorf("POST %s: %d %q, want a bare 404", bad, code, body)
		}
	}
	if _, body := get(t, c, base+"/boot.ipxe"); !strings.Contains(body, "kernel ") {
		t.Fatalf("a bad callback changed the host's state:\n%s", body)
	}
	if code, _ := post(base + "/cb/" + token + "/failed"); code != 200 {
		t.Errorf("failed callback: %d", code)
	}
	logs, _ := filepath.Glob(filepath.Join(dir, "data", "logs", "lo2.example.com-*.log"))
	if len(logs) != 1 {
		t.Errorf("uploaded installer log not kept: %v", logs)
	}
	// built: boot-once. The host's next config from every loader is local,
	// and a repeated callback is harmless.
	for i := 0; i < 2; i++ {
		if code, body := post(base + "/cb/" + token + "/built"); code != 200 {
			t.Fatalf("built callback #%d: %d %s", i+1, code, body)
		}
	}
	if _, body := get(t, c, base+"/boot.ipxe"); !strings.Contains(body, "sanboot") || strings.Contains(body, "kernel ") {
		t.Errorf("after built, iPXE still installs:\n%s", body)
	}
	if _, body := get(t, c, base+"/grub.cfg-01-52-54-00-00-00-20"); !strings.Contains(body, "chainloader") {
		t.Errorf("after built, GRUB still installs:\n%s", body)
	}
	if _, body := get(t, c, base+"/pxelinux.cfg/01-52-54-00-00-00-20"); !strings.Contains(body, "LOCALBOOT 0") {
		t.Errorf("after built, PXELINUX still installs:\n%s", body)
	}
	if code, _ := get(t, c, ksURL); code != 404 {
		t.Errorf("kickstart after built: %d, want 404", code)
	}
	if out, err := exec.Command(bin, "host", "build", "--config", cfg, "lo2.example.com").CombinedOutput(); err != nil {
		t.Fatalf("host build: %v\n%s", err, out)
	}
	// The CLI writes the store from another process: the server follows
	// it within a second, with no sync step.
	if !eventually(func() bool { _, body := get(t, c, base+"/boot.ipxe"); return strings.Contains(body, "kernel ") }) {
		t.Errorf("the server did not follow host build")
	}
	if code, _ := get(t, c, ksURL); code != 404 {
		t.Errorf("the old token still serves after a rebuild: %d", code)
	}

	// A state change shows in the next config, with no sync step.
	if out, err := exec.Command(bin, "host", "set-state", "--config", cfg, "lo2.example.com", "local").CombinedOutput(); err != nil {
		t.Fatalf("set-state: %v\n%s", err, out)
	}
	if !eventually(func() bool {
		_, body := get(t, c, base+"/boot.ipxe")
		return strings.Contains(body, "sanboot") && !strings.Contains(body, "kernel ")
	}) {
		t.Errorf("after set-state local, the host still installs")
	}
	if code, _ := get(t, c, ksURL); code != 404 {
		t.Errorf("kickstart after leaving install: %d, want 404", code)
	}

	// A bad reload is rejected and the previous state kept.
	good, _ := os.ReadFile(cfg)
	bad := strings.Replace(string(good), `"52:54:00:00:00:21"`, `"52:54:00:00:00:20"`, 1)
	os.WriteFile(cfg, []byte(bad), 0o644)
	p.cmd.Process.Signal(syscall.SIGHUP)
	deadline = time.Now().Add(10 * time.Second)
	for !strings.Contains(p.log(), "reload rejected") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(p.log(), "MAC 52:54:00:00:00:20 is also used by host lo2.example.com") {
		t.Errorf("reload error not logged with the field:\n%s", p.log())
	}
	if _, body := get(t, client("127.0.0.3"), base+"/boot.ipxe"); !strings.Contains(body, "other.example.com") {
		t.Errorf("previous state lost after a rejected reload:\n%s", body)
	}

	// The state survives a restart (SQLite).
	os.WriteFile(cfg, good, 0o644)
	p.cmd.Process.Signal(syscall.SIGTERM)
	p.cmd.Wait()
	startServe(t, bin, cfg)
	if _, body := get(t, c, base+"/boot.ipxe"); !strings.Contains(body, "sanboot") {
		t.Errorf("state lost across restart:\n%s", body)
	}
}

// eventually polls ok for up to 3 s: what another process writes to the
// store shows within a second (install.Service.Follow).
func eventually(ok func() bool) bool {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if ok() {
			return true
		}
	}
	return false
}

// Bad config is rejected before the server starts, naming file and field.
func TestServeRejectsBadConfig(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cases := map[string]string{
		"unknown profile": `profile: p` + "\n    netboot: install\n  - name: x.example.com\n    macs: [\"52:54:00:00:00:99\"]\n    profile: nope",
		"missing kernel":  `profile: p`,
		"duplicate MAC":   `profile: p` + "\n  - name: x.example.com\n    macs: [\"52:54:00:00:00:21\"]\n    profile: p",
		"bad prefix":      `profile: p` + "\n  - name: x.example.com\n    macs: [\"52:54:00:00:00:98\"]\n    ipv4: 127.0.0.9/40\n    profile: p",
		"same address":    `profile: p` + "\n  - name: x.example.com\n    macs: [\"52:54:00:00:00:97\"]\n    ipv4: 127.0.0.3/8\n    profile: p",
	}
	want := map[string]string{
		"unknown profile": `hosts[2].profile: unknown profile "nope"`,
		"missing kernel":  "distro el9: missing file",
		"duplicate MAC":   "hosts[2].macs[0]: MAC 52:54:00:00:00:21 is also used by host other.example.com",
		"bad prefix":      `hosts[2].ipv4: "127.0.0.9/40" is not an address/prefix`,
		"same address":    "hosts[2].ipv4: address 127.0.0.3 is also used by host other.example.com",
	}
	for name, edit := range cases {
		t.Run(name, func(t *testing.T) {
			src := fmt.Sprintf(serveConfig, freeUDPPort(t), freePort(t))
			src = strings.Replace(src, "profile: p\n    netboot: install\n  - name: other", "PLACEHOLDER\n    netboot: install\n  - name: other", 1)
			src = strings.Replace(src, "profile: p", edit, 1) // edits the last host (index 1)
			src = strings.Replace(src, "PLACEHOLDER", "profile: p", 1)
			if name == "missing kernel" {
				src = strings.Replace(src, "PLACEHOLDER", "profile: p", 1)
			}
			cfg := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yaml")
			os.WriteFile(cfg, []byte(src), 0o644)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "serve", "--config", cfg).CombinedOutput()
			if err == nil {
				t.Fatalf("serve started with a bad config:\n%s", out)
			}
			if !strings.Contains(string(out), cfg) || !strings.Contains(string(out), want[name]) {
				t.Errorf("error does not name file and field:\n%s\nwant %q", out, want[name])
			}
		})
	}
}
