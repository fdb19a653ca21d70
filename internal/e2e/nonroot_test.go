package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// nobody is the unprivileged user kickstand runs as in this test.
const nobody = 65534

// capNetBindService is bit 10 of the capability masks in /proc/PID/status.
const capNetBindService = 1 << 10

// asNobody is the setpriv prefix that runs a command as uid/gid 65534 with
// no supplementary groups, no_new_privs, and CAP_NET_BIND_SERVICE as the
// only capability in every set (bounding, inheritable, ambient, and so
// permitted and effective after exec). caps=false drops that one too.
func asNobody(caps bool) []string {
	c := "-all"
	if caps {
		c = "-all,+net_bind_service"
	}
	return []string{"setpriv", "--reuid=" + strconv.Itoa(nobody), "--regid=" + strconv.Itoa(nobody), "--clear-groups",
		"--no-new-privs", "--bounding-set=" + c, "--inh-caps=" + c, "--ambient-caps=" + c}
}

// nonrootLab is examples/netns-lab.yaml rewritten so that uid 65534 can
// run it: the binary, the config, the templates and the installer in a
// directory anyone may read, and a data directory that user owns.
func nonrootLab(t *testing.T) (dir, bin, cfg, data string) {
	t.Helper()
	ctx := context.Background()
	kernel, initrd, err := vmtest.Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	built, err := build()
	if err != nil {
		t.Fatal(err)
	}
	dir, err = os.MkdirTemp("", "kickstand-nonroot")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile := func(src, dst string, mode os.FileMode) {
		t.Helper()
		in, err := os.Open(src)
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, in); err != nil {
			t.Fatal(err)
		}
		if err := out.Close(); err != nil {
			t.Fatal(err)
		}
	}
	bin = filepath.Join(dir, "kickstand")
	copyFile(built, bin, 0o755)
	tree := filepath.Join(dir, "installer")
	copyFile(kernel, filepath.Join(tree, "vmlinuz"), 0o644)
	copyFile(initrd, filepath.Join(tree, "initrd.img"), 0o644)
	data = filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(data, nobody, nobody); err != nil {
		t.Fatal(err)
	}
	src, _ := labConfig(t, func(s string) string {
		s = strings.Replace(s, "tree: "+filepath.Dir(kernel), "tree: "+tree, 1)
		return regexp.MustCompile(`(?m)^  data_dir: .*$`).ReplaceAllString(s, "  data_dir: "+data)
	})
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	cfg = filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, bin, cfg, data
}

// procCaps reads the uid and capability sets of a process.
func procCaps(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestBIOSInstallNonRoot is issue 9's least-privilege e2e: the SeaBIOS +
// iPXE install of examples/netns-lab.yaml (DHCP on 67, TFTP on 69, HTTP,
// the kickstart under its token, the built callback) with kickstand
// running as uid 65534 with only CAP_NET_BIND_SERVICE. It also shows that
// without that capability kickstand cannot start, so the capability is
// needed, and that nothing more is.
func TestBIOSInstallNonRoot(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, "setpriv")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2enr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	_, bin, cfg, data := nonrootLab(t)

	// Without any capability the privileged ports are refused.
	noCaps := lab.Cmd(ctx, lab.Srv, append(asNobody(false), bin, "serve", "--config", cfg)...)
	out, err := noCaps.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "permission denied") {
		t.Fatalf("kickstand without CAP_NET_BIND_SERVICE: %v\n%s", err, out)
	}
	t.Logf("without CAP_NET_BIND_SERVICE: %s", lastLine(string(out)))

	var mu sync.Mutex
	var log strings.Builder
	cmd := lab.Cmd(ctx, lab.Srv, append(asNobody(true), bin, "serve", "--config", cfg)...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			mu.Lock()
			t.Logf("kickstand log:\n%s", log.String())
			mu.Unlock()
		}
	})
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			log.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if strings.Contains(sc.Text(), "syslog listening") || strings.Contains(sc.Text(), "dhcp serving") {
				once.Do(func() { close(up) })
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(30 * time.Second):
		t.Fatal("kickstand did not start as an unprivileged user")
	}

	// `ip netns exec` and setpriv exec, so the pid is kickstand's own.
	st := procCaps(t, cmd.Process.Pid)
	t.Logf("kickstand runs with Uid %s, CapEff %s, CapBnd %s, CapAmb %s, NoNewPrivs %s", st["Uid"], st["CapEff"], st["CapBnd"], st["CapAmb"], st["NoNewPrivs"])
	for _, k := range []string{"CapEff", "CapPrm", "CapBnd", "CapAmb"} {
		v, err := strconv.ParseUint(st[k], 16, 64)
		if err != nil || v != capNetBindService {
			t.Errorf("%s = %s; want only CAP_NET_BIND_SERVICE (%x)", k, st[k], capNetBindService)
		}
	}
	if f := strings.Fields(st["Uid"]); len(f) < 4 || f[0] != "65534" || f[1] != "65534" || f[2] != "65534" {
		t.Errorf("Uid %q; want 65534", st["Uid"])
	}
	if st["NoNewPrivs"] != "1" {
		t.Errorf("NoNewPrivs %q", st["NoNewPrivs"])
	}

	res, err := vmtest.BootVM(ctx, lab, vmtest.VMOptions{Name: "bios1", Firmware: vmtest.BIOS, MAC: vmtest.DefaultBIOSMAC, Timeout: 4 * time.Minute})
	if err != nil {
		t.Fatalf("VM: %v\n%s", err, tailOf(res))
	}
	for _, re := range []*regexp.Regexp{ksOK, postOK, done} {
		if res.Find(re) == "" {
			t.Fatalf("serial console lacks %s:\n%s", re, tailOf(res))
		}
	}
	// Read the timeline as the same user, so that no file in the data
	// directory ends up owned by root.
	timeline := func() string {
		out, err := exec.CommandContext(ctx, asNobody(false)[0], append(asNobody(false)[1:], bin, "host", "timeline", "--config", cfg, "--data", data, "bios1")...).CombinedOutput()
		if err != nil {
			t.Fatalf("host timeline as uid %d: %v\n%s", nobody, err, out)
		}
		return string(out)
	}
	var tl string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(300 * time.Millisecond) {
		tl = timeline()
		if strings.Contains(tl, "callback.built") || time.Now().After(deadline) {
			break
		}
	}
	inOrder(t, tl, "dhcp.ack", "http.script", "http.kernel", "http.initrd", "http.kickstart", "callback.built", "state")
	t.Logf("unprivileged boot took %s; timeline:\n%s", res.Elapsed, tl)
	ents, _ := os.ReadDir(data)
	for _, e := range ents {
		if fi, err := os.Stat(filepath.Join(data, e.Name())); err == nil {
			if uid := statUID(fi); uid != nobody {
				t.Errorf("%s is owned by uid %d", e.Name(), uid)
			}
		}
	}
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

func statUID(fi os.FileInfo) int {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid)
	}
	return -1
}
