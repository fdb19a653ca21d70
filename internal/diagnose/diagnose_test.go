package diagnose

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kickstand/kickstand/internal/store"
)

var t0 = time.Date(2026, time.March, 1, 10, 0, 0, 0, time.UTC)

func at(sec float64) time.Time { return t0.Add(time.Duration(sec * float64(time.Second))) }

// ev builds one recorded event, sec seconds after t0.
func ev(sec float64, kind, detail string, data map[string]any) store.Event {
	return store.Event{Host: "newbox", At: at(sec), Kind: kind, Detail: detail, Data: data}
}

func join(parts ...[]store.Event) []store.Event {
	var out []store.Event
	for _, p := range parts {
		out = append(out, p...)
	}
	for i := range out {
		out[i].ID = int64(i + 1)
	}
	return out
}

const mac = "52:54:00:12:34:56"

func build(sec float64) []store.Event {
	return []store.Event{ev(sec, "state", "local -> install", map[string]any{"from": "local", "to": "install", "by": "cli"})}
}

// biosDHCP is a BIOS PXE ROM's DORA exchange for pxelinux.0.
func biosDHCP(sec float64) []store.Event {
	d := func(s float64, kind string) store.Event {
		return ev(s, kind, "", map[string]any{"family": 4, "ip": "192.0.2.50", "mac": mac, "boot_file": "pxelinux.0", "firmware": "bios"})
	}
	return []store.Event{d(sec, "dhcp.discover"), d(sec+0.02, "dhcp.offer"), d(sec+1.1, "dhcp.request"), d(sec+1.12, "dhcp.ack")}
}

func tftp(sec float64, file, class string, bytes int, completed bool) store.Event {
	return ev(sec, "tftp.file", file, map[string]any{"file": file, "bytes": bytes, "duration_ms": 120, "completed": completed, "class": class})
}

func http(sec float64, class, path string, status, bytes int) store.Event {
	return ev(sec, "http."+class, "GET "+path, map[string]any{"path": path, "status": status, "bytes": bytes, "family": 4})
}

func syslogLine(sec float64, app, text string) store.Event {
	return ev(sec, "syslog", text, map[string]any{"severity": 6, "facility": 1, "app": app, "source": "192.0.2.50:514"})
}

// biosBoot is PXELINUX over TFTP up to the initrd, starting at sec.
func biosBoot(sec float64) []store.Event {
	return join(biosDHCP(sec), []store.Event{
		tftp(sec+1.5, "pxelinux.0", "loader", 42_000, true),
		tftp(sec+1.9, "ldlinux.c32", "file", 122_000, true),
		tftp(sec+2.1, "pxelinux.cfg/01-52-54-00-12-34-56", "config", 610, true),
		tftp(sec+4, "el9/vmlinuz", "kernel", 12_000_000, true),
		tftp(sec+15, "el9/initrd.img", "initrd", 98_000_000, true),
	})
}

// dracutToInstall is the installer from dracut's DHCP to packages.
func dracutToInstall(sec float64, packages int) []store.Event {
	out := []store.Event{
		ev(sec, "dhcp.discover", "", map[string]any{"family": 4, "mac": mac}),
		ev(sec+0.5, "dhcp.ack", "", map[string]any{"family": 4, "ip": "192.0.2.50", "mac": mac}),
		http(sec+2, "kickstart", "/ks/6f1c0e", 200, 4_100),
		http(sec+3, "stage2", "/el9/images/install.img", 200, 880_000_000),
		syslogLine(sec+40, "anaconda", "anaconda 34.25.4.9-1.el9 for AlmaLinux 9.4 started."),
		http(sec+55, "repodata", "/el9/.treeinfo", 200, 1_600),
		http(sec+56, "repodata", "/el9/BaseOS/repodata/repomd.xml", 200, 4_200),
	}
	for i := range packages {
		out = append(out, http(sec+60+float64(i)*0.5, "package", fmt.Sprintf("/el9/BaseOS/Packages/p%d.rpm", i), 200, 300_000))
	}
	return out
}

func builtAt(sec float64) []store.Event {
	return []store.Event{
		ev(sec, "callback.built", "", nil),
		ev(sec, "state", "install -> local", map[string]any{"from": "install", "to": "local", "by": "callback"}),
	}
}

// fullInstall is a complete healthy BIOS install, built at 700 s.
func fullInstall() []store.Event {
	return join(build(0), biosBoot(30), dracutToInstall(75, 400), builtAt(700))
}

func TestNoEvents(t *testing.T) {
	for name, evs := range map[string][]store.Event{
		"nothing":            nil,
		"build, no boot yet": join(build(0)),
	} {
		d := Diagnose(evs, at(3600), Options{})
		if d.Stage != StageWaiting || d.Stalled || d.Progress != 0 || d.Cause != "" {
			t.Errorf("%s: %+v, want waiting, not stalled", name, d)
		}
	}
}

// TestHealthyProgress replays a good install and diagnoses every prefix
// a few seconds after its last event: never stalled, no cause, the stage
// expected there, and progress that never goes back.
func TestHealthyProgress(t *testing.T) {
	evs := fullInstall()
	want := map[string]struct {
		stage    string
		progress int
	}{
		"dhcp.discover":  {StageDHCP, 5},
		"pxelinux.0":     {StageLoader, 10},
		"pxelinux.cfg/":  {StageConfig, 15},
		"el9/vmlinuz":    {StageKernel, 20},
		"el9/initrd.img": {StageKernel, 30},
		"/ks/":           {StageKickstart, 40},
		"install.img":    {StageStage2, 50},
		".treeinfo":      {StageInstalling, 60},
		"p399.rpm":       {StageInstalling, 88},
		"callback.built": {StageBuilt, 100},
	}
	last, seen := -1, map[string]bool{}
	for n := 1; n <= len(evs); n++ {
		e := evs[n-1]
		d := Diagnose(evs[:n], e.At.Add(5*time.Second), Options{})
		if d.Stalled || d.Cause != "" {
			t.Fatalf("after %s %q: %+v, want healthy", e.Kind, e.Detail, d)
		}
		if d.Progress < last {
			t.Fatalf("after %s %q progress went back from %d to %d", e.Kind, e.Detail, last, d.Progress)
		}
		last = d.Progress
		for key, w := range want {
			if !seen[key] && (strings.Contains(e.Detail, key) || (e.Detail == "" && e.Kind == key)) {
				seen[key] = true
				if d.Stage != w.stage || d.Progress != w.progress {
					t.Errorf("after %s %q: stage %s %d%%, want %s %d%%", e.Kind, e.Detail, d.Stage, d.Progress, w.stage, w.progress)
				}
			}
		}
	}
	if len(seen) < len(want) {
		t.Errorf("only %d of %d checkpoints matched an event", len(seen), len(want))
	}
	// The dracut DHCP after the initrd is not a new boot.
	dracut := join(build(0), biosBoot(30), dracutToInstall(75, 0)[:2])
	if d := Diagnose(dracut, at(90), Options{}); d.Stage != StageKernel || d.Progress != 30 {
		t.Errorf("dracut's DHCP moved the stage: %+v", d)
	}
}

// TestSignatures holds one recorded sequence per issue-6 signature, checked
// once just inside its stall window (healthy) and once past it.
func TestSignatures(t *testing.T) {
	tests := []struct {
		name    string
		evs     []store.Event
		opt     Options
		healthy float64 // seconds after t0: still fine
		stalled float64 // seconds after t0: stalled
		stage   string
		want    []string // in Cause or Hint
		notWant []string
	}{
		{
			name:    "DHCP ACK, no TFTP request (firewall on 69/udp)",
			evs:     join(build(0), biosDHCP(30)),
			healthy: 31.12 + 59, stalled: 31.12 + 61,
			stage: StageDHCP,
			want:  []string{"check 69/udp and next-server", "DHCP ACK", "pxelinux.0"},
		},
		{
			name: "UEFI firmware served a BIOS loader",
			evs: join(build(0),
				[]store.Event{
					ev(30, "dhcp.discover", "", map[string]any{"family": 4, "mac": mac, "firmware": "uefi"}),
					ev(31, "dhcp.ack", "", map[string]any{"family": 4, "ip": "192.0.2.50", "mac": mac, "firmware": "uefi", "boot_file": "pxelinux.0"}),
					tftp(31.5, "pxelinux.0", "loader", 0, false), // tsize probe
					tftp(31.6, "pxelinux.0", "loader", 42_000, true),
				}),
			healthy: 90, stalled: 92,
			stage: StageLoader,
			want:  []string{"wrong loader for the arch", "firmware uefi", "pxelinux.0", "EFI loader"},
		},
		{
			name: "EFI loader of another architecture",
			evs: join(build(0),
				[]store.Event{
					ev(31, "dhcp.ack", "", map[string]any{"family": 4, "ip": "192.0.2.51", "mac": mac, "firmware": "uefi", "boot_file": "grubx64.efi"}),
					tftp(31.6, "grubx64.efi", "loader", 2_500_000, true),
				}),
			healthy: 91, stalled: 92,
			stage: StageLoader,
			want:  []string{"wrong loader for the arch", "firmware uefi", "grubx64.efi", "another architecture"},
		},
		{
			name:    "kernel and initrd, no kickstart, IPv4: cmdline or network",
			evs:     join(build(0), biosBoot(30)),
			healthy: 45 + 119, stalled: 45 + 121,
			stage:   StageKernel,
			want:    []string{"no kickstart", "kernel command line", "network", "inst.ks="},
			notWant: []string{"race #1"},
		},
		{
			name:    "kernel and initrd, no kickstart, IPv6 without a gateway: race #1",
			evs:     v6Boot(),
			opt:     Options{Family: 6},
			healthy: 45 + 119, stalled: 45 + 121,
			stage: StageKernel,
			want:  []string{"seed-000 race #1", "router advertisements", "ip="},
		},
		{
			name:    "the same with the gateway configured is not race #1",
			evs:     v6Boot(),
			opt:     Options{Family: 6, HasGateway6: true},
			healthy: 45 + 119, stalled: 45 + 121,
			stage:   StageKernel,
			want:    []string{"kernel command line"},
			notWant: []string{"race #1"},
		},
		{
			name: "the installer's own words name race #1 (family taken from the events)",
			evs: join(v6Boot(), []store.Event{
				syslogLine(60, "dracut-initqueue", "curl: (7) Failed to connect to 2001:db8:20::20: Network is unreachable"),
				syslogLine(60.1, "dracut-initqueue", "Warning: failed to fetch kickstart from http://[2001:db8:20::20]/ks/6f1c0e"),
			}),
			opt:     Options{HasGateway6: true},
			healthy: 45 + 119, stalled: 45 + 121,
			stage: StageKernel,
			want:  []string{"seed-000 race #1", "Network is unreachable"},
		},
		{
			name:    "kickstart, no stage2 or .treeinfo, IPv4: bad stage2 URL",
			evs:     join(build(0), biosBoot(30), dracutToInstall(75, 0)[:3]),
			healthy: 77 + 179, stalled: 77 + 181,
			stage: StageKickstart,
			want:  []string{"a bad stage2 URL", "race #3", "inst.stage2="},
		},
		{
			name:    "kickstart, no stage2 or .treeinfo, IPv6 without a gateway: race #3 first",
			evs:     join(v6Boot(), []store.Event{v6Fetch(60, "kickstart", "/ks/6f1c0e")}),
			opt:     Options{Family: 6},
			healthy: 60 + 179, stalled: 60 + 181,
			stage: StageKickstart,
			want:  []string{"seed-000 race #3", "dropped the default gateway", "or a bad stage2 URL"},
		},
		{
			name: "stage2 fetched, Anaconda never asked for .treeinfo",
			evs: join(v6Boot(), []store.Event{
				v6Fetch(60, "kickstart", "/ks/6f1c0e"),
				v6Fetch(61, "stage2", "/el9/images/install.img"),
				syslogLine(120, "anaconda", "Installation source not set up"),
			}),
			opt:     Options{Family: 6, HasGateway6: true},
			healthy: 61 + 179, stalled: 61 + 181,
			stage: StageStage2,
			want:  []string{"never requested .treeinfo", "seed-000 race #3", "Installation source not set up"},
		},
		{
			name:    "installing, then silence",
			evs:     join(build(0), biosBoot(30), dracutToInstall(75, 100)),
			healthy: 185 + 20*60 - 1, stalled: 185 + 20*60 + 1,
			stage: StageInstalling,
			want:  []string{"no package fetch or installer log line", "100 packages", "%post"},
		},
		{
			name: "kickstart URL with a stale token",
			evs: join(build(0), biosBoot(30), []store.Event{
				http(77, "kickstart", "/ks/oldtoken", 404, 0),
			}),
			healthy: 45 + 119, stalled: 45 + 121,
			stage: StageKernel,
			want:  []string{"/ks/oldtoken", "got 404", "token"},
		},
		{
			name: "TFTP kernel transfer never completes",
			evs: join(build(0), biosDHCP(30), []store.Event{
				tftp(31.5, "pxelinux.0", "loader", 42_000, true),
				tftp(32, "pxelinux.cfg/01-52-54-00-12-34-56", "config", 610, true),
				tftp(40, "el9/vmlinuz", "kernel", 1_468, false),
			}),
			healthy: 32 + 59, stalled: 32 + 61,
			stage: StageConfig,
			want:  []string{"el9/vmlinuz did not complete", "ephemeral port", "blksize"},
		},
		{
			name: "iPXE chainload loop",
			evs: join(build(0), biosDHCP(30), []store.Event{
				tftp(31.5, "undionly.kpxe", "loader", 70_000, true),
				ev(33, "dhcp.ack", "", map[string]any{"family": 4, "ip": "192.0.2.50", "mac": mac, "firmware": "ipxe", "boot_file": "undionly.kpxe"}),
				tftp(33.5, "undionly.kpxe", "loader", 70_000, true),
				ev(35, "dhcp.ack", "", map[string]any{"family": 4, "ip": "192.0.2.50", "mac": mac, "firmware": "ipxe", "boot_file": "undionly.kpxe"}),
				tftp(35.5, "undionly.kpxe", "loader", 70_000, true),
			}),
			healthy: 35.5 + 59, stalled: 35.5 + 61,
			stage: StageLoader,
			want:  []string{"iPXE chainload loop", "3 times", "user class"},
		},
		{
			name:    "offers but no ACK",
			evs:     join(build(0), biosDHCP(30)[:2]),
			healthy: 30.02 + 59, stalled: 30.02 + 61,
			stage: StageDHCP,
			want:  []string{"dhcp.offer", "no DHCP ACK", "second DHCP server"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if d := Diagnose(tt.evs, at(tt.healthy), tt.opt); d.Stalled || d.Cause != "" || d.Stage != tt.stage {
				t.Errorf("inside the window: %+v, want %s and healthy", d, tt.stage)
			}
			d := Diagnose(tt.evs, at(tt.stalled), tt.opt)
			if !d.Stalled || d.Stage != tt.stage {
				t.Errorf("past the window: stage %s stalled %v, want %s stalled", d.Stage, d.Stalled, tt.stage)
			}
			text := d.Cause + " | " + d.Hint
			for _, w := range tt.want {
				if !strings.Contains(text, w) {
					t.Errorf("diagnosis lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(text, w) {
					t.Errorf("diagnosis wrongly says %q:\n%s", w, text)
				}
			}
		})
	}
}

func v6Fetch(sec float64, class, path string) store.Event {
	e := http(sec, class, path, 200, 1000)
	e.Data["family"] = 6
	return e
}

// v6Boot is UEFI PXEv6 chaining iPXE, which fetches kernel, initrd and the
// wait-for-route overlay over HTTP.
func v6Boot() []store.Event {
	d := func(s float64, kind, fw, boot string) store.Event {
		return ev(s, kind, "", map[string]any{"family": 6, "ip": "2001:db8:1::50", "mac": mac, "firmware": fw, "boot_file": boot})
	}
	return join(build(0), []store.Event{
		d(30, "dhcp.discover", "uefi", ""),
		d(30.1, "dhcp.offer", "uefi", "tftp://[2001:db8:1::1]/ipxe.efi"),
		d(31, "dhcp.request", "uefi", "tftp://[2001:db8:1::1]/ipxe.efi"),
		d(31.1, "dhcp.ack", "uefi", "tftp://[2001:db8:1::1]/ipxe.efi"),
		tftp(31.5, "ipxe.efi", "loader", 0, false),
		tftp(31.7, "ipxe.efi", "loader", 1_050_000, true),
		d(34, "dhcp.ack", "ipxe", "http://[2001:db8:1::1]/boot.ipxe"),
		v6Fetch(34.5, "script", "/boot.ipxe?mac=52:54:00:12:34:56"),
		v6Fetch(35, "kernel", "/el9/vmlinuz"),
		v6Fetch(44, "initrd", "/el9/initrd.img"),
		v6Fetch(45, "overlay", "/overlay/newbox.cpio.gz"),
	})
}

func TestBootOnce(t *testing.T) {
	localBoot := join(biosDHCP(760), []store.Event{
		tftp(761.5, "pxelinux.0", "loader", 42_000, true),
		tftp(762, "pxelinux.cfg/01-52-54-00-12-34-56", "config", 120, true), // LOCALBOOT 0
	})
	t.Run("local boot after built is healthy", func(t *testing.T) {
		d := Diagnose(join(fullInstall(), localBoot), at(4000), Options{})
		if d.Stage != StageBuilt || d.Progress != 100 || d.Stalled || d.Cause != "" {
			t.Errorf("%+v, want built and quiet", d)
		}
	})
	t.Run("install boot after built is a boot-once failure", func(t *testing.T) {
		evs := join(fullInstall(), localBoot, []store.Event{tftp(764, "el9/vmlinuz", "kernel", 12_000_000, true)})
		d := Diagnose(evs, at(770), Options{})
		if d.Cause == "" || !strings.Contains(d.Cause, "boot-once failure") ||
			!strings.Contains(d.Hint, "the host was still in install state or its firmware boots the network first") {
			t.Errorf("%+v, want the boot-once signature", d)
		}
		if d.Stage != StageKernel || d.Stalled {
			t.Errorf("stage %s stalled %v, want the new attempt's kernel stage, not stalled", d.Stage, d.Stalled)
		}
		if !strings.Contains(d.Hint, "left install state") {
			t.Errorf("hint %q should say the state did change to local", d.Hint)
		}
		// Without the state change the host was simply still in install.
		var noState []store.Event
		for _, e := range evs {
			if !(e.Kind == "state" && e.Detail == "install -> local") {
				noState = append(noState, e)
			}
		}
		if d := Diagnose(noState, at(770), Options{}); !strings.Contains(d.Hint, "still in install state: check the built callback") {
			t.Errorf("hint %q should say no state change followed built", d.Hint)
		}
		// The loop goes round: a second built does not hide it.
		evs = join(evs, dracutToInstall(800, 10), builtAt(1500))
		if d := Diagnose(evs, at(1600), Options{}); !strings.Contains(d.Cause, "boot-once failure") || d.Stage != StageBuilt {
			t.Errorf("after the second build: %+v, want built with the boot-once cause", d)
		}
	})
	t.Run("a new build starts a new install", func(t *testing.T) {
		evs := join(fullInstall(), localBoot, build(3000), biosBoot(3030))
		d := Diagnose(evs, at(3050), Options{})
		if d.Cause != "" || d.Stage != StageKernel {
			t.Errorf("%+v, want a fresh healthy install", d)
		}
	})
}

func TestFailedCallback(t *testing.T) {
	var log strings.Builder
	for i := 1; i <= 80; i++ {
		fmt.Fprintf(&log, "10:%02d:00,1 INF packaging: step %d\r\n", i%60, i)
	}
	log.WriteString("10:59:00,2 ERR anaconda: Error: disk sda has no space left for /var\n\n")
	evs := join(build(0), biosBoot(30), dracutToInstall(75, 50), []store.Event{
		ev(400, "callback.failed", "", map[string]any{"log_tail": log.String()}),
	})
	d := Diagnose(evs, at(5000), Options{})
	if d.Stage != StageFailed || d.Stalled {
		t.Errorf("stage %s stalled %v, want failed", d.Stage, d.Stalled)
	}
	if len(d.LogTail) != LogTailLines {
		t.Fatalf("log tail has %d lines, want %d", len(d.LogTail), LogTailLines)
	}
	if d.LogTail[0] != "10:32:00,1 INF packaging: step 32" || d.LogTail[49] != "10:59:00,2 ERR anaconda: Error: disk sda has no space left for /var" {
		t.Errorf("log tail is not the last 50 lines: first %q last %q", d.LogTail[0], d.LogTail[49])
	}
	if !strings.Contains(d.Cause, "reported failure") || !strings.Contains(d.Cause, "no space left") {
		t.Errorf("cause %q should name the failure and its last error line", d.Cause)
	}
	if d.Progress != Diagnose(evs[:len(evs)-1], at(400), Options{}).Progress {
		t.Errorf("progress %d should stay where the install got", d.Progress)
	}

	race2 := join(v6Boot(), []store.Event{
		ev(300, "callback.failed", "", map[string]any{"log_tail": "SettingsNotFoundError: SettingsNotFoundError('5cce9753-76ff-1f2e-8e09-918a15d4229d',)\n"}),
	})
	if d := Diagnose(race2, at(400), Options{}); !strings.Contains(d.Cause, "race #2") || len(d.LogTail) != 1 {
		t.Errorf("SettingsNotFoundError: %+v, want race #2 named", d)
	}
	noLog := join(build(0), biosBoot(30), []store.Event{ev(90, "callback.failed", "", nil)})
	if d := Diagnose(noLog, at(100), Options{}); d.Stage != StageFailed || d.Cause == "" || d.LogTail != nil {
		t.Errorf("failed without a log: %+v", d)
	}
}

// TestNewBootResets: a power cycle after the kernel ran starts over at DHCP,
// so an ACK then silence is diagnosed as such and not as the old stage.
func TestNewBootResets(t *testing.T) {
	evs := join(build(0), biosBoot(30), biosDHCP(300))
	d := Diagnose(evs, at(400), Options{})
	if d.Stage != StageDHCP || !d.Stalled || !strings.Contains(d.Hint, "check 69/udp") {
		t.Errorf("%+v, want a stalled DHCP stage", d)
	}
}

// TestThroughJSON: events read back from the store have float64 numbers and
// must diagnose the same.
func TestThroughJSON(t *testing.T) {
	for _, evs := range [][]store.Event{fullInstall(), v6Boot(), join(build(0), biosDHCP(30))} {
		b, err := json.Marshal(evs)
		if err != nil {
			t.Fatal(err)
		}
		var back []store.Event
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		now := evs[len(evs)-1].At.Add(10 * time.Minute)
		if a, b := Diagnose(evs, now, Options{}), Diagnose(back, now, Options{}); !reflect.DeepEqual(a, b) {
			t.Errorf("after JSON:\n%+v\nwant\n%+v", b, a)
		}
	}
}

func TestStallAfterOption(t *testing.T) {
	evs := join(build(0), biosDHCP(30))
	if d := Diagnose(evs, at(31.12+20), Options{StallAfter: 15 * time.Second}); !d.Stalled {
		t.Errorf("StallAfter 15s not honoured: %+v", d)
	}
	if d := Diagnose(evs, at(31.12+20), Options{}); d.Stalled {
		t.Errorf("default stall window shorter than 60s: %+v", d)
	}
	// A clock behind the events is not a stall.
	if d := Diagnose(evs, at(0), Options{}); d.Stalled {
		t.Errorf("now before the events: %+v", d)
	}
}

// "built" is said only of a host no longer in install: a host put back
// into install whose change left no event (older timelines) is waiting
// again, not built at 100 %.
func TestBuiltNeedsTheStateToSayIt(t *testing.T) {
	evs := fullInstall()
	evs = evs[:len(evs)-1] // the state event back to local is missing
	if d := Diagnose(evs, at(800), Options{State: "install"}); d.Stage != StageWaiting || d.Progress != 0 {
		t.Errorf("in install with an old built: %+v", d)
	}
	if d := Diagnose(fullInstall(), at(800), Options{State: "local"}); d.Stage != StageBuilt || d.Progress != 100 {
		t.Errorf("built and local: %+v", d)
	}
}
