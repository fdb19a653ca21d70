package initrd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// TestBootAppendedOverlay proves that the Linux kernel unpacks what Append writes: the test
// installer's initrd (busybox, dracut-like hooks) gets an overlay segment holding an
// initqueue/online hook and a payload file, and a real Debian kernel boots it in QEMU. The hook
// runs only if the kernel unpacked the overlay, and it prints the payload's sha256, which must
// match, so a segment boundary off by one byte or a bad checksum would show. gzip is what the
// IPv6 fixes use; xz and zstd show the other writers' output is kernel-readable too.
func TestBootAppendedOverlay(t *testing.T) {
	vmtest.NeedVM(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	kernel, base, err := vmtest.Installer(ctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	baseImg, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range []Compression{Gzip, XZ, Zstd} {
		t.Run(string(c), func(t *testing.T) {
			t.Parallel()
			payload := bytes.Repeat([]byte(fmt.Sprintf("kickstand overlay %s payload\n", c)), 4000)
			sum := sha256.Sum256(payload)
			hook := `echo "KSTEST: overlay-hook ran iface=$1 sha256=$(sha256sum /etc/kickstand/payload | cut -d' ' -f1)"` + "\n"
			overlay, err := Overlay([]File{
				{Path: "usr/lib/dracut/hooks/initqueue/online/05-kickstand-overlay.sh", Mode: 0o755, Data: []byte(hook)},
				{Path: "etc/kickstand/payload", Mode: 0o644, Data: payload},
			}, c)
			if err != nil {
				t.Fatal(err)
			}
			var img bytes.Buffer
			if err := Append(&img, bytes.NewReader(baseImg), overlay); err != nil {
				t.Fatal(err)
			}
			// Our own reader must see both segments before the kernel is asked to.
			segs, err := List(bytes.NewReader(img.Bytes()), Limits{})
			if err != nil || len(segs) != 2 || segs[1].Compression != c {
				t.Fatalf("reading base+overlay back: %d segments, %v", len(segs), err)
			}
			initrd := filepath.Join(t.TempDir(), "initrd+overlay.img")
			if err := os.WriteFile(initrd, img.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			lab, err := vmtest.NewLab(context.Background(), fmt.Sprintf("ksinitrd%d", i), vmtest.NoIPv6())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lab.Close() })
			vctx, vcancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer vcancel()
			opts := vmtest.VMOptions{
				Name: "overlay-" + string(c), Dir: t.TempDir(), Kernel: kernel, Initrd: initrd, Timeout: 3 * time.Minute,
				// No inst.ks: the installer configures eth0, runs the online hooks and powers off.
				Append: "console=ttyS0 net.ifnames=0 ip=192.0.2.10::192.0.2.1:255.255.255.0:t1:eth0:none",
			}
			if os.Getenv("KSTEST_SERIAL") == "1" {
				opts.Log = os.Stderr
			}
			vm, err := vmtest.StartVM(vctx, lab, opts)
			if err != nil {
				t.Fatal(err)
			}
			defer vm.Kill()
			line, err := vm.WaitFor(vctx, regexp.MustCompile(`KSTEST: overlay-hook ran`))
			if err != nil {
				t.Fatalf("%v\n%s", err, vm.Serial())
			}
			want := fmt.Sprintf("KSTEST: overlay-hook ran iface=eth0 sha256=%x", sum)
			if !regexp.MustCompile(regexp.QuoteMeta(want) + `$`).MatchString(line) {
				t.Errorf("hook printed %q, want %q", line, want)
			}
			if _, err := vm.WaitFor(vctx, regexp.MustCompile(`KSTEST: hook online 05-kickstand-overlay.sh rc=0`)); err != nil {
				t.Error(err)
			}
			// The base's own hook still runs after ours: the overlay added, it did not replace.
			if _, err := vm.WaitFor(vctx, regexp.MustCompile(`KSTEST: hook online 11-fetch-kickstart-net.sh`)); err != nil {
				t.Error(err)
			}
			res := vm.Wait()
			t.Logf("QEMU exit %d after %s; serial log %s", res.ExitCode, res.Elapsed.Round(100*time.Millisecond), res.SerialPath)
		})
	}
}
