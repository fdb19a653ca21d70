package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/vmtest"
)

// chassisControl is ipmi_sim's chassis_control program for one QEMU VM:
// `get power` says whether QEMU runs, `set power 1` starts it, `set power
// 0` kills it by its PID (QEMU outlives ipmi_sim otherwise), `set boot pxe`
// makes the next start, and only it, a network boot. Any other start
// boots without the NIC's ROM, as a machine booting its (here empty) disk.
const chassisControl = `#!/bin/sh
D=%[1]s
echo "$*" >> $D/calls.log
shift
op=$1; shift
running() { [ -f $D/qemu.pid ] && kill -0 "$(cat $D/qemu.pid)" 2>/dev/null; }
case "$op" in
get)
  for p in "$@"; do case $p in power) if running; then echo power:1; else echo power:0; fi;; esac; done;;
set)
  while [ $# -gt 1 ]; do
    case $1 in
    boot) echo "$2" > $D/boot;;
    power)
      if [ "$2" = 1 ]; then
        if ! running; then
          if [ "$(cat $D/boot 2>/dev/null)" = pxe ]; then boot="-boot n"; rom=""; else boot="-boot c"; rom=",romfile="; fi
          rm -f $D/boot
          echo "start $boot" >> $D/calls.log
          setsid timeout 240 qemu-system-x86_64 -machine pc,accel=tcg -m 512 -smp 1 -nographic -no-reboot -monitor none \
            -chardev file,id=s0,path=$D/serial.log,append=on -serial chardev:s0 \
            -smbios type=1,serial=IPMI-1 \
            -netdev tap,id=n0,ifname=%[2]s,script=no,downscript=no -device e1000,netdev=n0,mac=%[3]s$rom $boot \
            </dev/null >>$D/qemu.out 2>&1 &
          echo $! > $D/qemu.pid
        fi
      else
        if running; then pid=$(cat $D/qemu.pid); kill $pid; for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 $pid 2>/dev/null || break; sleep 0.2; done; kill -9 $pid 2>/dev/null; fi
        rm -f $D/qemu.pid
      fi;;
    esac
    shift 2
  done;;
esac
`

const ipmiLanConf = `name "kse2e"
set_working_mc 0x20
  startlan 1
    addr 127.0.0.1 9623
    priv_limit admin
    allowed_auths_callback none md2 md5 straight
    allowed_auths_user none md2 md5 straight
    allowed_auths_operator none md2 md5 straight
    allowed_auths_admin none md2 md5 straight
    guid a123456789abcdefa123456789abcdef
  endlan
  chassis_control "%s 0x20"
  user 2 true "admin" "%s" admin 10 none md2 md5 straight
`

const ipmiMAC = "52:54:00:00:08:10"

// TestIPMIReinstall is issue 17's real-BMC acceptance: OpenIPMI's ipmi_sim
// is host ipmi1's BMC, its chassis_control program starting and killing
// the QEMU VM. The VM runs with no network boot (its "disk"); `kickstand
// host reinstall ipmi1` sets the next boot to PXE once and power cycles it,
// and the VM installs through kickstand and reports built. ipmitool
// confirms each power state, and a second host whose password file is
// wrong gets a clear error at once, with one timeline event and no state
// change.
func TestIPMIReinstall(t *testing.T) {
	t.Parallel()
	vmtest.NeedVM(t)
	vmtest.Need(t, "ipmi_sim", "ipmitool", "setsid")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	lab, err := vmtest.NewLab(ctx, "e2eipmi")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.Close() })
	dir := t.TempDir()
	pw := filepath.Join(dir, "bmc.pw")
	wrong := filepath.Join(dir, "bmc-wrong.pw")
	os.WriteFile(pw, []byte("rack-s3cret\n"), 0o600)
	os.WriteFile(wrong, []byte("not-the-password\n"), 0o600)
	cfg, data := labConfig(t, func(s string) string {
		host := func(name, mac, ip, pwfile string) string {
			return fmt.Sprintf(`  - name: %s
    macs: ["%s"]
    ipv4: %s/24
    gateway4: 192.0.2.1
    nameservers: [192.0.2.1]
    interface: eth0
    profile: test-bios
    netboot: local
    bmc: {driver: ipmi, address: "127.0.0.1:9623", user: admin, password_file: %s}
`, name, mac, ip, pwfile)
		}
		return s + host("ipmi1", ipmiMAC, "192.0.2.14", pw) + host("ipmi2", "52:54:00:00:08:11", "192.0.2.15", wrong)
	})
	k := startKickstand(t, ctx, lab, cfg, data)

	tap, err := lab.NewTap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "chassis.sh")
	os.WriteFile(prog, []byte(fmt.Sprintf(chassisControl, dir, tap, ipmiMAC)), 0o755)
	os.WriteFile(filepath.Join(dir, "lan.conf"), []byte(fmt.Sprintf(ipmiLanConf, prog, "rack-s3cret")), 0o644)
	os.WriteFile(filepath.Join(dir, "ks.emu"), []byte("mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nmc_enable 0x20\n"), 0o644)
	sim := lab.Cmd(ctx, lab.Srv, "ipmi_sim", "-c", filepath.Join(dir, "lan.conf"), "-f", filepath.Join(dir, "ks.emu"), "-s", filepath.Join(dir, "state"), "-n")
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sim.Process.Kill()
		sim.Wait()
		// QEMU outlives ipmi_sim: kill it by its PID.
		if b, err := os.ReadFile(filepath.Join(dir, "qemu.pid")); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
	})
	ipmitool := func(args ...string) string {
		argv := append([]string{"ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", "9623", "-U", "admin", "-f", pw, "-C", "3", "-N", "1", "-R", "2"}, args...)
		out, err := lab.Output(ctx, lab.Srv, argv...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(out)
	}
	var st string
	for i := 0; i < 30; i++ {
		if out, err := lab.Output(ctx, lab.Srv, "ipmitool", "-I", "lanplus", "-H", "127.0.0.1", "-p", "9623", "-U", "admin", "-f", pw, "-C", "3", "-N", "1", "-R", "1", "power", "status"); err == nil {
			st = out
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(st, "Chassis Power is off") {
		t.Fatalf("ipmi_sim power status at start: %q", st)
	}
	// The machine is running its "disk" (no network boot).
	ipmitool("power", "on")
	if st := ipmitool("power", "status"); st != "Chassis Power is on" {
		t.Fatalf("after power on: %q", st)
	}
	time.Sleep(3 * time.Second)

	// No view shows the BMC's user or password file.
	if out, err := exec.Command(k.bin, "host", "show", "-o", "json", "--config", cfg, "--data", data, "ipmi1").CombinedOutput(); err != nil || strings.Contains(string(out), "admin") || strings.Contains(string(out), "bmc.pw") {
		t.Errorf("host show: %v\n%s", err, out)
	}

	// Wrong credentials: a clear error at once, no state change.
	start := time.Now()
	out, err := lab.Output(ctx, lab.Srv, k.bin, "host", "reinstall", "--config", cfg, "--data", data, "ipmi2")
	if err == nil || !strings.Contains(err.Error()+out, "refused the user or password") || strings.Contains(err.Error()+out, "not-the-password") {
		t.Fatalf("reinstall with a wrong password: %v\n%s", err, out)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("a refused login took %s", d)
	}
	tl2 := k.timeline(t, "ipmi2")
	if n := len(regexp.MustCompile(`(?m)^\S+ \S+\s+bmc\s`).FindAllString(tl2, -1)); n != 1 || strings.Contains(tl2, "-> install") {
		t.Errorf("ipmi2's timeline after a refused login (want one bmc event, no state change):\n%s", tl2)
	}

	// The reinstall.
	out, err = lab.Output(ctx, lab.Srv, k.bin, "host", "reinstall", "--config", cfg, "--data", data, "ipmi1")
	if err != nil {
		t.Fatalf("host reinstall: %v\n%s", err, out)
	}
	t.Logf("reinstall: %s", out)
	if st := ipmitool("power", "status"); st != "Chassis Power is on" {
		t.Fatalf("after reinstall: %q", st)
	}
	calls, _ := os.ReadFile(filepath.Join(dir, "calls.log"))
	if !regexp.MustCompile(`(?s)start -boot c.*set boot pxe.*set power 0.*set power 1.*start -boot n`).Match(calls) {
		t.Errorf("chassis_control did not see boot pxe, off, on (a network boot):\n%s", calls)
	}
	tl := k.waitTimeline(t, "ipmi1", regexp.MustCompile(`callback\.built`), 3*time.Minute)
	serial, _ := os.ReadFile(filepath.Join(dir, "serial.log"))
	for _, re := range []*regexp.Regexp{ksOK, postOK} {
		if !re.Match(serial) {
			t.Errorf("serial console lacks %s:\n%s", re, tail(string(serial), 4000))
		}
	}
	inOrder(t, tl, "local -> install (by cli)", "next boot from PXE (once)", "power cycle", "dhcp.ack", "http.kernel", "http.kickstart")
	builtThenLocal(t, tl)
	// The installer powers off at the end: the BMC sees it.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ipmitool("power", "status") != "Chassis Power is off" {
		time.Sleep(time.Second)
	}
	if st := ipmitool("power", "status"); st != "Chassis Power is off" {
		t.Errorf("after the install: %q", st)
	}
	if out, err := lab.Output(ctx, lab.Srv, k.bin, "host", "power", "--config", cfg, "--data", data, "ipmi1", "status"); err != nil || strings.TrimSpace(out) != "ipmi1: power off" {
		t.Errorf("host power status: %v %q", err, out)
	}
	t.Logf("timeline:\n%s\nchassis_control calls:\n%s", tl, calls)
	if strings.Contains(k.Log(), "rack-s3cret") || strings.Contains(tl+tl2, "rack-s3cret") {
		t.Error("the BMC password is in kickstand's log or a timeline")
	}
}
