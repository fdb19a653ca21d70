package hardening

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// fakeHash is a recognisable SHA-512 crypt string; it is a secret here.
const fakeHash = "$6$KSHARDENsalt$FAKEROOTPWHASHdoNotUseThisAnywhere0123456789abcdefABCDEFxyzXYZ./0123456789abcdefghijk"

const secretsKS = `# {{ .host.name }}
text
url --url={{ .install.url }}
lang en_US.UTF-8
keyboard us
rootpw --iscrypted {{ index .host.vars "rootpw" }}
zerombr
clearpart --all --initlabel
autopart
reboot

%packages
@core
%end

{{ snippet "callbacks" }}
`

const secretsConfig = `server:
  http: "127.0.0.1:%[1]d"
  address_v4: 127.0.0.1
  data_dir: data
  templates: templates
syslog:
  enabled: true
  listen: "127.0.0.1:%[2]d"
tftp:
  enabled: true
  listen: "127.0.0.1:%[3]d"
distros:
  - name: d1
    release: rhel9
    arch: x86_64
    tree: tree
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: p1
    distro: d1
    kickstart: secret.ks
hosts:
  - name: victim
    macs: ["52:54:00:5e:c0:01"]
    ipv4: 127.0.0.3/8
    profile: p1
    netboot: install
    vars: {rootpw: "%[4]s"}
  - name: neighbour
    macs: ["52:54:00:5e:c0:02"]
    ipv4: 127.0.0.2/8
    profile: p1
    netboot: install
    vars: {rootpw: "%[4]s"}
`

// httpFrom makes a client whose connections come from the loopback
// address src, so the server sees the request as coming from that host.
func httpFrom(src string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

type answer struct {
	status int
	body   string
}

func do(t *testing.T, c *http.Client, method, url, auth string, body []byte) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var hdr strings.Builder
	resp.Header.Write(&hdr)
	return answer{resp.StatusCode, hdr.String() + "\n" + string(b)}
}

// TestSecretsStayOut is issue 9's secrets grep: the real binary serves a
// host whose kickstart carries a root password hash, everything an
// operator or another machine can see is collected (logs, CLI listings and
// timeline in text and JSON, error answers, API, metrics), and neither the
// hash nor the build token may appear in any of it. The only places they
// belong are the kickstart itself and (the token) the boot configuration
// that points the installer at it.
func TestSecretsStayOut(t *testing.T) {
	vmtest.Need(t, "curl")
	bin := kickstandBin(t)
	httpPort, syslogPort, tftpPort := freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
	cfgText := fmt.Sprintf(secretsConfig, httpPort, syslogPort, tftpPort, fakeHash)
	fx := newFixture(t, cfgText, map[string]string{"secret.ks": secretsKS})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	srv := start(t, exec.CommandContext(ctx, bin, "serve", "--config", fx.cfg), "http listening")
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)

	// seen is everything that must be free of secrets.
	var seen []struct{ what, text string }
	see := func(what, text string) { seen = append(seen, struct{ what, text string }{what, text}) }

	// The boot script names the kickstart URL, token included: that is
	// how the installer finds it (see docs/security.md, build tokens).
	victim := httpFrom("127.0.0.3")
	script := do(t, victim, "GET", base+"/boot.ipxe?mac=52:54:00:5e:c0:01", "", nil)
	m := regexp.MustCompile(`/ks/([A-Za-z0-9]+)`).FindStringSubmatch(script.body)
	if script.status != 200 || m == nil {
		t.Fatalf("boot script has no kickstart URL (%d):\n%s", script.status, script.body)
	}
	token := m[1]
	if strings.Contains(script.body, fakeHash) {
		t.Errorf("the boot script carries the password hash:\n%s", script.body)
	}

	// The kickstart, from the host's own address: the one place the hash
	// belongs.
	ks := do(t, victim, "GET", base+"/ks/"+token, "", nil)
	if ks.status != 200 || !strings.Contains(ks.body, "rootpw --iscrypted "+fakeHash) {
		t.Fatalf("kickstart (%d) lacks the hash:\n%s", ks.status, ks.body)
	}
	// From another inventory host's address, with a wrong token, with a
	// token-shaped guess, and to the wrong callback: bare 404s.
	for _, c := range []struct {
		name   string
		client *http.Client
		method string
		path   string
	}{
		{"victim's kickstart from the neighbour's address", httpFrom("127.0.0.2"), "GET", "/ks/" + token},
		{"victim's callback from the neighbour's address", httpFrom("127.0.0.2"), "POST", "/cb/" + token + "/built"},
		{"a wrong token", victim, "GET", "/ks/" + strings.Repeat("A", len(token))},
		{"a truncated token", victim, "GET", "/ks/" + token[:len(token)-1]},
		{"an unknown callback", victim, "POST", "/cb/" + token + "/pwned"},
		{"a token with a climbing path", victim, "GET", "/ks/../ks/" + token},
	} {
		a := do(t, c.client, c.method, base+c.path, "", nil)
		if a.status != 404 {
			t.Errorf("%s: status %d, want 404:\n%s", c.name, a.status, a.body)
		}
		see("answer to "+c.name, a.body)
	}

	// The same configuration over TFTP, by a real client; it carries the
	// token (like the script) but must not carry the hash.
	tcfg, err := exec.CommandContext(ctx, "curl", "-sS", "--max-time", "10", "--interface", "127.0.0.3", fmt.Sprintf("tftp://127.0.0.1:%d/pxelinux.cfg/01-52-54-00-5e-c0-01", tftpPort)).CombinedOutput()
	if err != nil || !strings.Contains(string(tcfg), "/ks/"+token) {
		t.Errorf("pxelinux config over TFTP: %v\n%s", err, tcfg)
	}
	if strings.Contains(string(tcfg), fakeHash) {
		t.Errorf("the pxelinux config carries the password hash:\n%s", tcfg)
	}

	// Installer text that quotes secrets reaches the timeline through
	// syslog and the failure log: dracut and Anaconda log the kernel
	// command line (inst.ks=.../ks/TOKEN), and a %post or %onerror may
	// print the kickstart.
	sl, err := net.DialUDP("udp", &net.UDPAddr{IP: net.ParseIP("127.0.0.3")}, &net.UDPAddr{IP: net.ParseIP("127.0.0.1"), Port: syslogPort})
	must(t, err)
	for _, line := range []string{
		"<30>dracut: Kernel command line: initrd=initrd.img inst.ks=" + base + "/ks/" + token + " console=ttyS0",
		"<29>anaconda: ks.cfg: rootpw --iscrypted " + fakeHash,
	} {
		if _, err := sl.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	sl.Close()
	failLog := []byte("anaconda failed\nrootpw --iscrypted " + fakeHash + "\ncurl " + base + "/cb/" + token + "/failed\n")
	if a := do(t, victim, "POST", base+"/cb/"+token+"/failed", "", failLog); a.status != 200 {
		t.Errorf("failed callback: %d %s", a.status, a.body)
	}
	if a := do(t, victim, "POST", base+"/cb/"+token+"/built", "", nil); a.status != 200 {
		t.Errorf("built callback: %d %s", a.status, a.body)
	}
	// After built the token is spent.
	if a := do(t, victim, "GET", base+"/ks/"+token, "", nil); a.status != 404 {
		t.Errorf("kickstart after built: %d, want 404", a.status)
	}

	// A bad reload whose file quotes the hash where YAML wants a map: the
	// error (in the log) must say where, not what.
	bad := strings.Replace(cfgText, `vars: {rootpw: "`+fakeHash+`"}`, `vars: "rootpw=`+fakeHash+`"`, 1)
	fx.write(t, bad)
	srv.cmd.Process.Signal(syscall.SIGHUP)
	srv.waitLog(t, "reload rejected", 10*time.Second)
	// host list works from the last good inventory in the store, and
	// its warning about the file says where, not what.
	out, err := fx.cli(t, bin, "host", "list")
	see("host list with a broken file", out)
	if err != nil || !strings.Contains(out, "using the last good inventory") {
		t.Errorf("host list with a broken file: %v\n%s", err, out)
	}
	fx.write(t, cfgText)

	// The API, when this build mounts it, with a token made by the CLI.
	apiTok := ""
	if a := do(t, victim, "GET", base+"/api/v1/whoami", "", nil); a.status == 200 {
		out, err := exec.Command(bin, "--config", fx.cfg, "--data", fx.data, "token", "create", "--name", "hardening").Output()
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		apiTok = strings.TrimSpace(string(out))
		for _, p := range []string{"/api/v1/hosts", "/api/v1/hosts/victim", "/api/v1/hosts/victim/timeline", "/api/v1/events", "/api/v1/profiles", "/api/v1/distros", "/api/v1/whoami"} {
			a := do(t, victim, "GET", base+p, apiTok, nil)
			if a.status != 200 {
				t.Errorf("GET %s: %d", p, a.status)
			}
			see("API "+p, a.body)
		}
		a := do(t, victim, "POST", base+"/api/v1/hosts/victim/build", "", nil)
		see("API build without a token", a.body)
		if a.status != 401 {
			t.Errorf("API build without a token: %d, want 401", a.status)
		}
		see("API with a wrong token", do(t, victim, "GET", base+"/api/v1/hosts", "ksapi_WRONG", nil).body)
	} else {
		t.Logf("this build's serve does not mount /api/v1 (%d): API not checked", a.status)
	}
	if a := do(t, victim, "GET", base+"/metrics", "", nil); a.status == 200 {
		see("/metrics", a.body)
	} else {
		t.Logf("this build's serve does not mount /metrics (%d): metrics not checked", a.status)
	}
	see("/healthz", do(t, victim, "GET", base+"/healthz", "", nil).body)

	// Give the timeline recorder a moment to write, then read it back the
	// way an operator does.
	time.Sleep(1500 * time.Millisecond)
	for _, args := range [][]string{
		{"host", "list"}, {"--output", "json", "host", "list"},
		{"host", "show", "victim"}, {"--output", "json", "host", "show", "victim"},
		{"host", "timeline", "victim"}, {"--output", "json", "host", "timeline", "victim"},
		{"distro", "list"}, {"token", "list"},
	} {
		out, err := fx.cli(t, bin, args...)
		if err != nil {
			t.Errorf("kickstand %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		see("kickstand "+strings.Join(args, " "), out)
	}
	tl, _ := fx.cli(t, bin, "host", "timeline", "victim")
	if !strings.Contains(tl, "syslog") || !strings.Contains(tl, "callback.built") {
		t.Errorf("timeline lacks the syslog lines or the callback; the test would prove nothing:\n%s", tl)
	}
	if err := srv.stop(10 * time.Second); err != nil {
		t.Errorf("serve after SIGTERM: %v", err)
	}
	see("kickstand serve log", srv.Log())
	logs, _ := os.ReadDir(fx.data + "/logs")
	if len(logs) != 1 {
		t.Errorf("uploaded failure logs: %d files, want 1", len(logs))
	}

	secrets := map[string]string{"root password hash": fakeHash, "build token": token}
	if apiTok != "" {
		secrets["API token"] = apiTok
	}
	for _, s := range seen {
		for name, secret := range secrets {
			if i := strings.Index(s.text, secret); i >= 0 {
				lo, hi := max(0, i-120), min(len(s.text), i+len(secret)+40)
				t.Errorf("%s leaks the %s: ...%s...", s.what, name, s.text[lo:hi])
			}
		}
	}
	t.Logf("checked %d outputs for %d secrets", len(seen), len(secrets))
}
