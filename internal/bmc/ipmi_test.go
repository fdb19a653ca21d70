package bmc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
)

func passwordFile(t *testing.T, pass string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bmc.pw")
	if err := os.WriteFile(p, []byte(pass+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, mode)
	return p
}

var quick = limits{timeout: 200 * time.Millisecond, backoff: 10 * time.Millisecond, attempts: 3}

// A BMC that never answers costs a bounded number of tries: Attempts
// logins, each one packet (go-ipmi's own retries are off), then a clear
// error.
func TestNoAnswerIsRetriedBoundedly(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var packets atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			packets.Add(1)
		}
	}()
	b := &inventory.BMC{Driver: "ipmi", Address: pc.LocalAddr().String(), User: "admin", PasswordFile: passwordFile(t, "pw", 0o600)}
	_, err = open(context.Background(), b, "", quick)
	if !errors.Is(err, ErrNoAnswer) {
		t.Fatalf("open = %v, want ErrNoAnswer", err)
	}
	if !strings.Contains(err.Error(), pc.LocalAddr().String()) || !strings.Contains(err.Error(), "3 attempts") {
		t.Errorf("error does not say where and how often: %v", err)
	}
	time.Sleep(100 * time.Millisecond)
	if n := packets.Load(); n < 1 || n > int64(quick.attempts) {
		t.Errorf("the BMC got %d packets, want 1..%d", n, quick.attempts)
	}
}

// A password file others can read is refused before anything is sent.
func TestPasswordFileMustBePrivate(t *testing.T) {
	b := &inventory.BMC{Driver: "ipmi", Address: "192.0.2.9:623", User: "admin", PasswordFile: passwordFile(t, "s3cret", 0o644)}
	_, err := open(context.Background(), b, "", quick)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("open with a 0644 password file = %v", err)
	}
}

// ipmiSim starts OpenIPMI's ipmi_sim on a free loopback port with a
// chassis_control program that keeps power and boot device in files.
func ipmiSim(t *testing.T, pass string) (addr, dir string) {
	t.Helper()
	if _, err := exec.LookPath("ipmi_sim"); err != nil {
		if os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" {
			t.Fatal("ipmi_sim missing (Debian package openipmi)")
		}
		t.Skip("ipmi_sim missing (Debian package openipmi)")
	}
	dir = t.TempDir()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := pc.LocalAddr().(*net.UDPAddr).Port
	pc.Close()
	prog := filepath.Join(dir, "chassis.sh")
	os.WriteFile(prog, []byte(`#!/bin/sh
D=`+dir+`
echo "$*" >> $D/calls.log
shift
op=$1; shift
case "$op" in
get) for p in "$@"; do case $p in power) [ -f $D/power ] && echo "power:1" || echo "power:0";; esac; done;;
set) while [ $# -gt 1 ]; do case $1 in power) if [ "$2" = 1 ]; then touch $D/power; else rm -f $D/power; fi;; boot) echo "$2" > $D/boot;; esac; shift 2; done;;
esac
`), 0o755)
	os.WriteFile(filepath.Join(dir, "lan.conf"), []byte(fmt.Sprintf(`name "kstest"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 %d
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s 0x20"
  user 2 true "admin" "%s" admin 10 none md2 md5 straight
`, port, prog, pass)), 0o644)
	os.WriteFile(filepath.Join(dir, "ks.emu"), []byte("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"), 0o644)
	cmd := exec.Command("ipmi_sim", "-c", filepath.Join(dir, "lan.conf"), "-f", filepath.Join(dir, "ks.emu"), "-s", filepath.Join(dir, "state"), "-n")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	for i := 0; i < 50; i++ { // until it answers
		if out, err := exec.Command("ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", fmt.Sprint(port), "-U", "admin", "-P", pass, "-C", "3", "-N", "1", "-R", "1", "power", "status").CombinedOutput(); err == nil && strings.Contains(string(out), "Power is") {
			return addr, dir
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("ipmi_sim did not answer")
	return
}

// The driver against a real BMC: power state, boot device once, on/off,
// and a wrong password refused at once with a clear error.
func TestIPMISim(t *testing.T) {
	t.Parallel()
	addr, dir := ipmiSim(t, "s3cret")
	ctx := context.Background()
	b := &inventory.BMC{Driver: "ipmi", Address: addr, User: "admin", PasswordFile: passwordFile(t, "s3cret", 0o600)}
	m, err := open(ctx, b, "", limits{timeout: 2 * time.Second, backoff: 100 * time.Millisecond, attempts: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if st, err := m.PowerState(ctx); err != nil || st != "off" {
		t.Fatalf("power state = %q, %v; want off", st, err)
	}
	if err := m.BootPXEOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.PowerCycle(ctx); err != nil { // off: powers on
		t.Fatal(err)
	}
	if st, err := m.PowerState(ctx); err != nil || st != "on" {
		t.Fatalf("after cycle from off: %q, %v", st, err)
	}
	if err := m.PowerCycle(ctx); err != nil {
		t.Fatal(err)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls.log"))
	for _, want := range []string{"set boot pxe", "set power 1", "set power 0"} {
		if !strings.Contains(string(calls), want) {
			t.Errorf("chassis_control was not asked to %q:\n%s", want, calls)
		}
	}
	if !strings.Contains(string(calls), "set power 0\n0x20 set power 1") && !strings.Contains(string(calls), "set power 0\n0x20 get power\n0x20 set power 1") {
		t.Logf("calls:\n%s", calls)
	}

	wrong := &inventory.BMC{Driver: "ipmi", Address: addr, User: "admin", PasswordFile: passwordFile(t, "wrong-password", 0o600)}
	start := time.Now()
	_, err = open(ctx, wrong, "", limits{timeout: 2 * time.Second, backoff: 2 * time.Second, attempts: 3})
	if !errors.Is(err, ErrAuth) {
		t.Fatalf("wrong password: %v, want ErrAuth", err)
	}
	if strings.Contains(err.Error(), "wrong-password") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("the error shows a password: %v", err)
	}
	// Not retried: a retry would have waited the 2 s backoff first.
	if d := time.Since(start); d > 1900*time.Millisecond {
		t.Errorf("a refused login took %s: it was retried", d)
	}
}
