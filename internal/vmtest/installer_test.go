package vmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// These tests run the test installer's shell code on the host with the same busybox that goes
// into the initrd, so parser and curl-shim mistakes show up in a second instead of in a VM boot.

func installerSrc(t *testing.T) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "testdata", "installer")
}

func TestParseIP(t *testing.T) {
	Need(t, "busybox")
	lib := filepath.Join(installerSrc(t), "lib", "kstest", "lib.sh")
	tests := []struct {
		cmdline string // the ip= value is the first argument
		want    string // mode|addr|prefix|gw|host|iface|dns
	}{
		{"ip=192.0.2.10::192.0.2.1:255.255.255.0:t1:eth0:none", "static4|192.0.2.10|24|192.0.2.1|t1|eth0|"},
		{"ip=192.0.2.10::192.0.2.1:24:t1:eth1:none", "static4|192.0.2.10|24|192.0.2.1|t1|eth1|"},
		{"ip=192.0.2.10::192.0.2.1:255.255.254.0:h::none:192.0.2.53:198.51.100.53", "static4|192.0.2.10|23|192.0.2.1|h||192.0.2.53 198.51.100.53"},
		{"ip=192.0.2.10::192.0.2.1:255.255.255.0:h:eth0:none:1500:52:54:00:00:00:10", "static4|192.0.2.10|24|192.0.2.1|h|eth0|"},
		{"ip=[2001:db8::10]::[2001:db8::1]:64:t1:eth0:none", "static6|2001:db8::10|64|2001:db8::1|t1|eth0|"},
		{"ip=[2001:db8::10]:::64:::none", "static6|2001:db8::10|64||||"},
		{"ip=[2401:beef:11::31:0]:::64:::none", "static6|2401:beef:11::31:0|64||||"},
		{"ip=[2001:db8::10/56]::[fe80::1]::h:eth0:none:[2001:db8::53]", "static6|2001:db8::10|56|fe80::1|h|eth0|2001:db8::53"},
		{"ip=dhcp", "dhcp||||||"},
		{"ip=on", "dhcp||||||"},
		{"ip=dhcp6", "dhcp6||||||"},
		{"ip=auto6", "auto6||||||"},
		{"ip=eth1:dhcp", "dhcp|||||eth1|"},
		{"ip=::::h:eth0:dhcp", "dhcp||||h|eth0|"},
		{"ip=192.0.2.10 netmask=255.255.255.0 gateway=192.0.2.1 dns=192.0.2.53,198.51.100.53 ksdevice=eth0", "static4|192.0.2.10|24|192.0.2.1|||192.0.2.53 198.51.100.53"},
		{"ip=bogus", "unknown||||||"},
		{"ip=192.0.2.10 gateway=192.0.2.1", "unknown|192.0.2.10||192.0.2.1|||"},
		{"ip=[2001:db8::10", "unknown||||||"},
		{"ip=192.0.2.10::192.0.2.1:255.0.255.0:h:eth0:none", "unknown|192.0.2.10||192.0.2.1|h|eth0|"},
	}
	for _, tc := range tests {
		spec := strings.TrimPrefix(strings.Fields(tc.cmdline)[0], "ip=")
		script := fmt.Sprintf(`. %s; CMDLINE=%q; parse_ip %q; echo "$IP_MODE|$IP_ADDR|$IP_PREFIX|$IP_GW|$IP_HOST|$IP_IFACE|$IP_DNS"`, lib, tc.cmdline, spec)
		out, err := exec.Command("busybox", "sh", "-c", script).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v: %s", tc.cmdline, err, out)
			continue
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.cmdline, got, tc.want)
		}
	}
}

func TestCmdlineGet(t *testing.T) {
	Need(t, "busybox")
	lib := filepath.Join(installerSrc(t), "lib", "kstest", "lib.sh")
	script := `. ` + lib + `; CMDLINE="ks=http://a/old inst.ks=http://b/ks.cfg nameserver=192.0.2.53 nameserver=2001:db8::53 inst.ks.sendmac quiet"
echo "ks=$(cmdline_get inst.ks)"
cmdline_get inst.ks.sendmac >/dev/null && echo sendmac
cmdline_get missing >/dev/null || echo missing
echo "ns=$(cmdline_all nameserver | tr '\n' ' ')"`
	out, err := exec.Command("busybox", "sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	want := "ks=http://b/ks.cfg\nsendmac\nmissing\nns=192.0.2.53 2001:db8::53 \n"
	if string(out) != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// callbackServer records requests the way a kickstand callback endpoint would see them.
type callbackServer struct {
	mu       sync.Mutex
	requests []string // "METHOD PATH BODY"
	agents   []string
	status   []int // statuses to answer in turn; 200 once used up
}

func (s *callbackServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.requests = append(s.requests, r.Method+" "+r.URL.Path+" "+string(body))
	s.agents = append(s.agents, r.UserAgent()+"|"+r.Header.Get("Content-Type")+"|"+r.Header.Get("X-Test"))
	code := http.StatusOK
	if len(s.status) > 0 {
		code, s.status = s.status[0], s.status[1:]
	}
	s.mu.Unlock()
	w.WriteHeader(code)
	fmt.Fprintf(w, "payload for %s", r.URL.Path)
}

func (s *callbackServer) got() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.requests...)
}

func runShim(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	shim := filepath.Join(installerSrc(t), "usr", "bin", "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "busybox", append([]string{"sh", shim}, args...)...)
	cmd.Env = append(os.Environ(), "TMPDIR="+t.TempDir())
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exitErr *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("curl shim %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

func TestCurlShim(t *testing.T) {
	Need(t, "busybox")
	srv := &callbackServer{}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "anaconda.log")
	if err := os.WriteFile(logFile, []byte("line one\r\nline two\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	t.Run("post-data-binary-file", func(t *testing.T) {
		_, errOut, code := runShim(t, "-fsS", "--retry", "3", "-X", "POST", "--data-binary", "@"+logFile, ts.URL+"/cb/built")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if reqs := srv.got(); reqs[len(reqs)-1] != "POST /cb/built line one\r\nline two\n" {
			t.Errorf("server saw %q", reqs[len(reqs)-1])
		}
	})
	t.Run("post-d-joins-and-strips", func(t *testing.T) {
		_, errOut, code := runShim(t, "-s", "-d", "a=1", "-d", "@"+logFile, "-H", "X-Test: yes", ts.URL+"/cb/d")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if reqs := srv.got(); reqs[len(reqs)-1] != "POST /cb/d a=1&line oneline two" {
			t.Errorf("server saw %q", reqs[len(reqs)-1])
		}
		srv.mu.Lock()
		agent := srv.agents[len(srv.agents)-1]
		srv.mu.Unlock()
		if !strings.HasPrefix(agent, "curl/") || !strings.Contains(agent, "|application/x-www-form-urlencoded|yes") {
			t.Errorf("user agent|content type|X-Test = %q", agent)
		}
	})
	t.Run("get-to-stdout-and-file", func(t *testing.T) {
		out, errOut, code := runShim(t, "-fsSL", ts.URL+"/file")
		if code != 0 || out != "payload for /file" {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		dst := filepath.Join(dir, "out")
		if _, errOut, code := runShim(t, "-fsSo", dst, ts.URL+"/file2"); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if b, _ := os.ReadFile(dst); string(b) != "payload for /file2" {
			t.Errorf("-o wrote %q", b)
		}
	})
	t.Run("fail-on-404", func(t *testing.T) {
		srv.mu.Lock()
		srv.status = []int{404, 404}
		srv.mu.Unlock()
		_, errOut, code := runShim(t, "-fsS", ts.URL+"/missing")
		if code != 22 || !strings.Contains(errOut, "404") {
			t.Errorf("-f on 404: exit %d, stderr %q; want 22", code, errOut)
		}
		out, _, code := runShim(t, "-s", "-o", "/dev/null", "-w", "%{http_code}", ts.URL+"/missing")
		if code != 0 || out != "404" {
			t.Errorf("without -f: exit %d, -w printed %q; want 0 and 404", code, out)
		}
	})
	t.Run("retry-transient", func(t *testing.T) {
		srv.mu.Lock()
		srv.status = []int{503, 500}
		srv.mu.Unlock()
		before := len(srv.got())
		_, errOut, code := runShim(t, "-fsS", "--retry", "3", "--retry-delay", "0", "-X", "POST", ts.URL+"/cb/retry")
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if n := len(srv.got()) - before; n != 3 {
			t.Errorf("%d requests, want 3 (503, 500, then 200)", n)
		}
	})
	t.Run("retry-gives-up", func(t *testing.T) {
		srv.mu.Lock()
		srv.status = []int{503, 503, 503}
		srv.mu.Unlock()
		before := len(srv.got())
		_, _, code := runShim(t, "-fsS", "--retry", "1", "--retry-delay", "0", ts.URL+"/cb/giveup")
		if code != 22 {
			t.Errorf("exit %d, want 22", code)
		}
		if n := len(srv.got()) - before; n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
		srv.mu.Lock()
		srv.status = nil
		srv.mu.Unlock()
	})
	t.Run("refused-not-retried", func(t *testing.T) {
		// A port that was just free on loopback; curl does not retry a refused connect unless told.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		start := time.Now()
		_, errOut, code := runShim(t, "-fsS", "--retry", "5", "--retry-delay", "2", "http://"+addr+"/")
		if code != 7 || !strings.Contains(errOut, "refused") {
			t.Errorf("exit %d, stderr %q; want 7 and refused", code, errOut)
		}
		if time.Since(start) > 2*time.Second {
			t.Errorf("took %s: a refused connect was retried", time.Since(start))
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		for _, args := range [][]string{{"-T", "x", ts.URL}, {"-X", "PUT", ts.URL}, {"--form", "a=b", ts.URL}, {"-fsS"}} {
			if _, _, code := runShim(t, args...); code != 2 {
				t.Errorf("%v: exit %d, want 2", args, code)
			}
		}
	})
}

// TestBuildScriptCache checks the build script's output and that a second run is a cache hit.
func TestBuildScriptCache(t *testing.T) {
	NeedVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	kernel, initrd, err := Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(initrd)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() < 500<<10 || st.Size() > 3<<20 {
		t.Errorf("initrd is %d bytes, want 0.5-3 MB", st.Size())
	}
	if _, err := os.Stat(kernel); err != nil {
		t.Fatal(err)
	}
	list, err := exec.CommandContext(ctx, "sh", "-c", "gzip -dc "+initrd+" | cpio -t --quiet").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"init", "bin/busybox", "usr/bin/curl", "sbin/udhcpc", "lib/modules/e1000.ko",
		"lib/modules/virtio_net.ko", "etc/kstest/modules", "usr/lib/dracut/hooks/initqueue/online/11-fetch-kickstart-net.sh"} {
		if !strings.Contains("\n"+string(list), "\n"+want+"\n") {
			t.Errorf("initrd lacks %s", want)
		}
	}
	dir, _ := InstallerCacheDir()
	out, err := exec.CommandContext(ctx, "bash", filepath.Join(filepath.Dir(filepath.Dir(installerSrc(t))), "scripts", "build-test-installer.sh"), dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "up to date") {
		t.Errorf("second run was not a cache hit: %v: %s", err, out)
	}
	st2, _ := os.Stat(initrd)
	if !st2.ModTime().Equal(st.ModTime()) {
		t.Error("second run rewrote initrd.img")
	}
}

// TestRunSections runs the installer's %post/%onerror handling on the host with busybox sh.
func TestRunSections(t *testing.T) {
	Need(t, "busybox")
	lib := filepath.Join(installerSrc(t), "lib", "kstest", "lib.sh")
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, ks, script string) string {
		dir := t.TempDir()
		bin := filepath.Join(dir, "bin")
		if err := os.Mkdir(bin, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, applet := range []string{"sh", "timeout"} {
			if err := os.Symlink(busybox, filepath.Join(bin, applet)); err != nil {
				t.Fatal(err)
			}
		}
		ksFile := filepath.Join(dir, "ks.cfg")
		if err := os.WriteFile(ksFile, []byte(ks), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(busybox, "sh", "-c", ". "+lib+"; "+script)
		cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "KS_FILE="+ksFile,
			"KS_TMP="+dir, "KS_LOG="+filepath.Join(dir, "log"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return string(out)
	}
	ks := `text
%pre --log=/tmp/pre.log
echo in-pre
%end
%post
echo in-post-1
%end
%post --nochroot --interpreter /usr/bin/python
print("py")
%end
%post --erroronfail --interpreter=/bin/bash
echo in-post-3; exit 4
%packages
@core
%end
%onerror
echo in-onerror
%end
`
	t.Run("post", func(t *testing.T) {
		out := run(t, ks, `run_sections post; echo "ret=$?"`)
		want := "KSTEST: post start n=1 header=%post\nin-post-1\nKSTEST: post rc=0 n=1\n" +
			"KSTEST: post skipped n=2 interpreter=/usr/bin/python\n" +
			"KSTEST: post start n=3 header=%post --erroronfail --interpreter=/bin/bash\nin-post-3\nKSTEST: post rc=4 n=3\nret=1\n"
		if out != want {
			t.Errorf("got:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("onerror", func(t *testing.T) {
		out := run(t, ks, `run_sections onerror; echo "ret=$?"`)
		want := "KSTEST: onerror start n=1 header=%onerror\nin-onerror\nKSTEST: onerror rc=0 n=1\nret=0\n"
		if out != want {
			t.Errorf("got:\n%s\nwant:\n%s", out, want)
		}
	})
	t.Run("none", func(t *testing.T) {
		if out := run(t, "text\n%packages\n%end\n", `run_sections post; echo "ret=$?"`); out != "ret=0\n" {
			t.Errorf("got %q", out)
		}
	})
}

// FuzzParseIP feeds arbitrary ip= values (outside input: they come from the kernel command line
// kickstand renders or an operator types) to the installer's parser. It must always finish,
// classify the value, and never hand a malformed IPv4 address or prefix to `ip addr add`.
func FuzzParseIP(f *testing.F) {
	for _, seed := range []string{
		"192.0.2.10::192.0.2.1:255.255.255.0:t1:eth0:none", "[2001:db8::10]::[2001:db8::1]:64:t1:eth0:none",
		"[2001:db8::10]:::64:::none", "dhcp", "eth0:dhcp6", "auto6", "192.0.2.10", "[", "]:[:]", "::::::::::",
		"*", "$(reboot)", "`id`", "a\"b", "192.0.2.10::192.0.2.1:255.0.255.0:h:eth0:none",
	} {
		f.Add(seed)
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		f.Skip("needs busybox")
	}
	root, err := RepoRoot()
	if err != nil {
		f.Fatal(err)
	}
	lib := filepath.Join(root, "testdata", "installer", "lib", "kstest", "lib.sh")
	modes := map[string]bool{"static4": true, "static6": true, "dhcp": true, "dhcp6": true, "auto6": true, "unknown": true}
	f.Fuzz(func(t *testing.T, spec string) {
		if strings.ContainsAny(spec, " \t\n\x00") {
			t.Skip("the kernel command line splits on whitespace")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, busybox, "sh", "-c",
			`. "$LIB"; CMDLINE="ip=$SPEC"; parse_ip "$SPEC"; printf '%s\n' "$IP_MODE" "$IP_ADDR" "$IP_PREFIX"`)
		cmd.Dir = t.TempDir()
		cmd.Env = []string{"LIB=" + lib, "SPEC=" + spec, "PATH=" + os.Getenv("PATH")}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("parse_ip %q: %v", spec, err)
		}
		// One field per line: the spec cannot hold a newline, so fields cannot run together.
		parts := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
		if len(parts) != 3 || !modes[parts[0]] {
			t.Fatalf("parse_ip %q: output %q", spec, out)
		}
		if parts[0] == "static4" {
			if ip := net.ParseIP(parts[1]); ip == nil || ip.To4() == nil {
				t.Errorf("parse_ip %q: static4 with address %q", spec, parts[1])
			}
			if n, err := strconv.Atoi(parts[2]); err != nil || n < 0 || n > 32 {
				t.Errorf("parse_ip %q: static4 with prefix %q", spec, parts[2])
			}
		}
	})
}
