// Package e2e boots real firmware in QEMU through a real kickstand: DHCP,
// then TFTP or HTTP, then a real Linux kernel, then the kickstart and the
// built callback. Everything runs inside network namespaces the tests make.
package e2e

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// kickstand is a `kickstand serve` running in a lab's server namespace.
type kickstand struct {
	bin, cfg, data string
	mu             sync.Mutex
	log            strings.Builder
}

func (k *kickstand) Log() string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.log.String()
}

// build compiles kickstand once per test binary.
var build = sync.OnceValues(func() (string, error) {
	root, err := vmtest.RepoRoot()
	if err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "kickstand-e2e-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "kickstand")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kickstand")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// labConfig is examples/netns-lab.yaml with the test installer's real
// location, a private data directory, and edits.
func labConfig(t *testing.T, edit func(string) string) (cfg, data string) {
	t.Helper()
	ctx := context.Background()
	kernel, _, err := vmtest.Installer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	root, _ := vmtest.RepoRoot()
	src, err := os.ReadFile(filepath.Join(root, "examples", "netns-lab.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	data = filepath.Join(dir, "data")
	s := strings.NewReplacer(
		"tree: ../build/test-installer", "tree: "+filepath.Dir(kernel),
		"data_dir: ../build/netns-lab-data", "data_dir: "+data,
		"templates: templates", "templates: "+filepath.Join(root, "examples", "templates"),
	).Replace(string(src))
	if edit != nil {
		s = edit(s)
	}
	cfg = filepath.Join(dir, "kickstand.yaml")
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, data
}

func startKickstand(t *testing.T, ctx context.Context, lab *vmtest.Lab, cfg, data string) *kickstand {
	t.Helper()
	bin, err := build()
	if err != nil {
		t.Fatal(err)
	}
	k := &kickstand{bin: bin, cfg: cfg, data: data}
	// KICKSTAND_E2E_PCAP=DIR captures the lab's bridge, for debugging.
	if dir := os.Getenv("KICKSTAND_E2E_PCAP"); dir != "" {
		cap := lab.Cmd(ctx, lab.Srv, "tcpdump", "-i", lab.Bridge, "-w", filepath.Join(dir, t.Name()+".pcap"))
		if err := cap.Start(); err == nil {
			t.Cleanup(func() { cap.Process.Signal(os.Interrupt); cap.Wait() })
		}
	}
	cmd := lab.Cmd(ctx, lab.Srv, bin, "serve", "--config", cfg)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("kickstand log:\n%s", k.Log())
		}
	})
	up := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		once := sync.Once{}
		for sc.Scan() {
			k.mu.Lock()
			k.log.WriteString(sc.Text() + "\n")
			k.mu.Unlock()
			if strings.Contains(sc.Text(), "http listening") {
				once.Do(func() { close(up) })
			}
		}
	}()
	select {
	case <-up:
	case <-time.After(30 * time.Second):
		t.Fatalf("kickstand did not start:\n%s", k.Log())
	}
	return k
}

// timeline returns `kickstand host timeline HOST`.
func (k *kickstand) timeline(t *testing.T, host string) string {
	t.Helper()
	out, err := exec.Command(k.bin, "host", "timeline", "--config", k.cfg, "--data", k.data, host).CombinedOutput()
	if err != nil {
		t.Fatalf("host timeline: %v\n%s", err, out)
	}
	return string(out)
}

// waitTimeline waits until the host's timeline has an event matching re.
func (k *kickstand) waitTimeline(t *testing.T, host string, re *regexp.Regexp, d time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		tl := k.timeline(t, host)
		if re.MatchString(tl) || time.Now().After(deadline) {
			return tl
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// inOrder checks that the kinds appear in the timeline in this order.
func inOrder(t *testing.T, tl string, kinds ...string) {
	t.Helper()
	pos := 0
	for _, k := range kinds {
		i := strings.Index(tl[pos:], k)
		if i < 0 {
			t.Errorf("timeline lacks %q after position %d (want order %v):\n%s", k, pos, kinds, tl)
			return
		}
		pos += i + len(k)
	}
}

var (
	ksOK   = regexp.MustCompile(`KSTEST: ks-fetch ok`)
	postOK = regexp.MustCompile(`KSTEST: post-ran host=`)
	done   = regexp.MustCompile(`KSTEST: done`)
)

// TestBIOSInstallThenBootOnce is issue 3's SeaBIOS+iPXE e2e and issue 6's
// boot-once e2e: DHCP from kickstand, the iPXE script, kernel and initrd
// over HTTP, the kickstart through its token URL, %post's built callback;
// then a second network boot gets the local-boot script and fetches no
// kernel.
func TestBIOSInstallThenBootOnce(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2eb")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, data := labConfig(t, nil)
	k := startKickstand(t, ctx, lab, cfg, data)

	res, err := vmtest.BootVM(ctx, lab, vmtest.VMOptions{Name: "bios1", Firmware: vmtest.BIOS, MAC: vmtest.DefaultBIOSMAC, Timeout: 4 * time.Minute})
	if err != nil {
		t.Fatalf("VM: %v\n%s", err, tailOf(res))
	}
	for _, re := range []*regexp.Regexp{ksOK, postOK, done} {
		if res.Find(re) == "" {
			t.Fatalf("serial console lacks %s:\n%s", re, tailOf(res))
		}
	}
	tl := k.waitTimeline(t, "bios1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "dhcp.ack", "http.script", "http.kernel", "http.initrd", "http.kickstart", "callback.built", "state")
	t.Logf("first boot took %s; timeline:\n%s", res.Elapsed, tl)

	// Second network boot of the same machine: local boot, no kernel.
	before := strings.Count(tl, "\n")
	vm, err := vmtest.StartVM(ctx, lab, vmtest.VMOptions{Name: "bios1-again", Firmware: vmtest.BIOS, MAC: vmtest.DefaultBIOSMAC, Timeout: 2 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Kill()
	tl = k.waitTimeline(t, "bios1", regexp.MustCompile(`(?s)install -> local.*http\.script`), 90*time.Second)
	time.Sleep(5 * time.Second) // would a kernel fetch follow?
	tl = k.timeline(t, "bios1")
	second := strings.Join(strings.Split(tl, "\n")[before:], "\n")
	if !strings.Contains(second, "http.script") {
		t.Fatalf("no second network boot seen:\n%s", tl)
	}
	if strings.Contains(second, "http.kernel") || strings.Contains(second, "http.kickstart") {
		t.Fatalf("second boot fetched the installer again (reinstall loop):\n%s", second)
	}
	script, err := exec.Command(k.bin, "render", "ipxe", "--config", cfg, "--data", data, "bios1").CombinedOutput()
	if err != nil || !strings.Contains(string(script), "sanboot") {
		t.Fatalf("local-boot script: %v\n%s", err, script)
	}
}

// TestUEFIInstall: OVMF's own PXE stack gets ipxe.efi from kickstand's DHCP
// and TFTP, iPXE then takes the script over HTTP, and the real kernel boots
// and fetches its kickstart.
func TestUEFIInstall(t *testing.T) {
	t.Parallel() // each test has its own lab; go test runs GOMAXPROCS at once
	vmtest.NeedVM(t)
	vmtest.Need(t, vmtest.OVMFCode, "/usr/lib/ipxe/ipxe.efi")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2eu")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	cfg, data := labConfig(t, nil)
	k := startKickstand(t, ctx, lab, cfg, data)

	res, err := vmtest.BootVM(ctx, lab, vmtest.VMOptions{Name: "uefi1", Firmware: vmtest.UEFI, MAC: vmtest.DefaultUEFIMAC, NoIPv6PXE: true, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatalf("VM: %v\n%s", err, tailOf(res))
	}
	for _, re := range []*regexp.Regexp{ksOK, postOK, done} {
		if res.Find(re) == "" {
			t.Fatalf("serial console lacks %s:\n%s", re, tailOf(res))
		}
	}
	tl := k.waitTimeline(t, "uefi1", regexp.MustCompile(`callback\.built`), 10*time.Second)
	inOrder(t, tl, "dhcp.ack", "tftp.file", "http.script", "http.kernel", "http.kickstart", "callback.built")
	if !strings.Contains(tl, "ipxe.efi") {
		t.Errorf("UEFI did not load ipxe.efi over TFTP:\n%s", tl)
	}
	t.Logf("UEFI boot took %s; timeline:\n%s", res.Elapsed, tl)
}

func tailOf(r *vmtest.VMResult) string {
	if r == nil {
		return "(no VM result)"
	}
	s := r.Serial
	if len(s) > 6000 {
		s = s[len(s)-6000:]
	}
	return s + "\n" + r.Stderr
}

func execCommand(name string, args ...string) *exec.Cmd { return exec.Command(name, args...) }
