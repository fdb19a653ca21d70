package diagnose

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Stages reported in Diagnosis.Stage, in boot-chain order.
const (
	StageWaiting    = "waiting"    // in install state, nothing heard yet
	StageDHCP       = "dhcp"       // got (or asked for) an address
	StageLoader     = "loader"     // network boot program fetched
	StageConfig     = "config"     // loader config or iPXE script fetched
	StageKernel     = "kernel"     // kernel (and initrd) fetched
	StageKickstart  = "kickstart"  // dracut fetched the kickstart
	StageStage2     = "stage2"     // installer image fetched
	StageInstalling = "installing" // repository metadata and packages
	StageBuilt      = "built"      // the built callback arrived
	StageFailed     = "failed"     // the failed callback arrived
)

// Options carry what the timeline cannot tell.
type Options struct {
	// Family is 4 or 6; 0 takes it from the install's DHCP events.
	Family int
	// HasGateway6 says the install's IPv6 configuration names a default
	// gateway (ip= with a gateway), which rules out seed-000 races #1/#4.
	HasGateway6 bool
	// StallAfter is how long a boot step may go without its next request;
	// 0 means 60 s. Booting the kernel into dracut gets twice this, and
	// fetching the kickstart and stage2 images (hundreds of MB) three times.
	StallAfter time.Duration
	// State is the host's netboot state now. "built" is said only of a
	// host that is no longer in install: a host put back into install
	// starts over, whatever its old events say.
	State string
	// InstallStallAfter is how long Anaconda may stay silent (no package
	// fetch, no syslog line) once it installs; 0 means 20 min, because
	// %post scripts and large packages are legitimately quiet.
	InstallStallAfter time.Duration
}

// Diagnosis is the answer for one host.
type Diagnosis struct {
	Stage    string    `json:"stage"`
	Progress int       `json:"progress"` // 0-100, for the UI's bar
	Stalled  bool      `json:"stalled"`
	Since    time.Time `json:"since,omitzero"` // when the install last moved forward
	// Cause is set whenever something is wrong: a stall, a failure
	// callback, or a reinstall loop (which is not stalled).
	Cause   string   `json:"cause,omitempty"`
	Hint    string   `json:"hint,omitempty"`
	LogTail []string `json:"log_tail,omitempty"` // last lines of the uploaded installer log
}

// LogTailLines is how much of a failed install's log is shown.
const LogTailLines = 50

// level orders the boot chain; a later request moves an install forward.
type level int

const (
	lvWaiting level = iota
	lvDHCP
	lvLoader
	lvConfig
	lvKernel
	lvInitrd
	lvKickstart
	lvStage2
	lvInstalling
	lvBuilt
)

var stageOf = [...]string{StageWaiting, StageDHCP, StageLoader, StageConfig, StageKernel, StageKernel,
	StageKickstart, StageStage2, StageInstalling, StageBuilt}

var progressOf = [...]int{0, 5, 10, 15, 20, 30, 40, 50, 60, 100}

// levelOfClass maps the fetch classes of tftp.file and http.<class> events.
var levelOfClass = map[string]level{
	"loader": lvLoader, "script": lvConfig, "config": lvConfig,
	"kernel": lvKernel, "initrd": lvInitrd, "overlay": lvInitrd,
	"kickstart": lvKickstart, "stage2": lvStage2,
	"repodata": lvInstalling, "package": lvInstalling,
}

// attempt is what one boot of the host has shown so far.
type attempt struct {
	level      level
	progressAt time.Time    // last event that moved the level (or repeated it)
	activity   time.Time    // last event of any kind
	dhcp       *store.Event // last DHCP exchange
	firmware   string       // what the last PXE DHCP exchange reported
	bootFile   string
	loader     *store.Event // last loader fetched
	loaders    int          // loader fetches this attempt; iPXE chain loops repeat them
	shim       bool         // a Secure Boot shim was among them
	config     *store.Event
	failure    *store.Event // last failed or aborted fetch
	packages   int
	evidence   []string // syslog lines that match a known signature
}

// next starts a new boot attempt, keeping what the DHCP exchange that
// started it said.
func (a attempt) next(lv level, at time.Time) attempt {
	return attempt{level: lv, progressAt: at, activity: at, dhcp: a.dhcp, firmware: a.firmware, bootFile: a.bootFile}
}

// Diagnose reads one host's events (in order, as the store returns them) and
// says where its current install is. The current install is what follows
// the most recent state change to "install"; without one, every event.
func Diagnose(evs []store.Event, now time.Time, opt Options) Diagnosis {
	d := diagnose(evs, now, opt)
	if opt.State == "install" && d.Stage == StageBuilt {
		// The events say built, the state says installing again: a
		// change into install that left no event (older timelines).
		return Diagnosis{Stage: StageWaiting, Since: d.Since}
	}
	return d
}

// ForHost diagnoses a host from its events, with the options its record
// gives: its state, its family (IPv6 when its only static address is), and
// whether its IPv6 configuration names a gateway.
func ForHost(evs []store.Event, now time.Time, h *inventory.HostRecord) Diagnosis {
	opt := Options{HasGateway6: h.Gateway6 != "", State: h.State}
	if _, v4 := h.Addr4(); !v4 {
		if _, v6 := h.Addr6(); v6 {
			opt.Family = 6
		}
	}
	return Diagnose(evs, now, opt)
}

func diagnose(evs []store.Event, now time.Time, opt Options) Diagnosis {
	if opt.StallAfter <= 0 {
		opt.StallAfter = 60 * time.Second
	}
	if opt.InstallStallAfter <= 0 {
		opt.InstallStallAfter = 20 * time.Minute
	}
	evs, started := currentInstall(evs)
	if opt.Family == 0 {
		opt.Family = family(evs)
	}

	var (
		a      = attempt{progressAt: started, activity: started}
		built  *store.Event
		failed *store.Event
		loop   *store.Event // an installer fetch after built
		// leftInstall: a state change away from install followed built
		// (before the loop, if any).
		leftInstall bool
	)
	for i := range evs {
		e := &evs[i]
		kind, class, _ := strings.Cut(e.Kind, ".")
		if kind != "state" && kind != "lint" {
			a.activity = e.At
		}
		switch kind {
		case "state":
			if built != nil && loop == nil && str(e, "to") != "install" {
				leftInstall = true
			}
		case "dhcp":
			if class == "release" || class == "decline" {
				continue
			}
			pxe := str(e, "firmware") != ""
			// A firmware DHCP after the kernel ran is a new boot; dracut's
			// and Anaconda's own DHCP carry no firmware and change nothing.
			if pxe && a.level >= lvKernel && built == nil {
				a, failed = a.next(lvWaiting, e.At), nil
			}
			a.dhcp = e
			if pxe {
				a.firmware, a.bootFile = str(e, "firmware"), str(e, "boot_file")
			}
			if a.level <= lvDHCP {
				a.level, a.progressAt = lvDHCP, e.At
			}
		case "tftp", "http":
			if kind == "tftp" {
				class = str(e, "class")
			}
			if !fetched(e) {
				if _, ok := levelOfClass[class]; ok || class == "updates" {
					a.failure = e
				}
				continue
			}
			lv, ok := levelOfClass[class]
			if !ok {
				continue // other files, updates.img: activity only
			}
			if built != nil {
				if lv < lvKernel {
					continue // the local-boot config a built host should get
				}
				if loop == nil {
					loop = e
				}
				a, built = a.next(lvWaiting, e.At), nil // installing again; a later built counts anew
			}
			if lv == lvLoader && a.level >= lvKernel {
				a, failed = a.next(lvWaiting, e.At), nil
			}
			switch lv {
			case lvLoader:
				a.loader = e
				a.loaders++
				a.shim = a.shim || isShim(fetchName(e))
			case lvConfig:
				a.config = e
			}
			if class == "package" {
				a.packages++
			}
			if lv >= a.level {
				a.level, a.progressAt, a.failure = lv, e.At, nil
			}
		case "syslog":
			if sig := signature(e.Detail); sig != "" {
				a.evidence = append(a.evidence, e.Detail)
			}
		case "callback":
			switch class {
			case "built":
				built = e
				a.level, a.progressAt = lvBuilt, e.At
			case "failed":
				failed = e
			}
		}
	}

	d := Diagnosis{Stage: stageOf[a.level], Progress: progressOf[a.level], Since: a.progressAt}
	if a.level == lvInstalling {
		// Package count is unknown up front; this rises quickly and never
		// claims done (a minimal install of ~400 packages shows 88%).
		d.Progress += int(math.Round(35 * float64(a.packages) / float64(a.packages+100)))
	}
	switch {
	case failed != nil && (built == nil || failed.At.After(built.At)):
		d.Stage = StageFailed
		d.Since = failed.At
		d.LogTail = tail(str(failed, "log_tail"), LogTailLines)
		d.Cause, d.Hint = failure(d.LogTail, failed.Detail, opt)
		return d
	case loop != nil:
		d.Cause = fmt.Sprintf("boot-once failure (reinstall loop): the built callback arrived, then at %s the host PXE-booted the installer again (%s %s)",
			loop.At.Format(time.TimeOnly), loop.Kind, fetchName(loop))
		d.Hint = "the host was still in install state or its firmware boots the network first: "
		if leftInstall {
			d.Hint += "the timeline shows it left install state after built, so the installer was served anyway: check that its loader config is not cached or shared (a menu file that is not per-host) and that the local-boot entry is what every loader gets"
		} else {
			d.Hint += "no state change followed built, so it was still in install state: check the built callback's response and that the state change reached the store"
		}
		if built != nil {
			d.Stage, d.Progress = StageBuilt, 100
		}
		return d
	case built != nil:
		return d
	case len(evs) == 0 || a.level == lvWaiting:
		return d
	}

	window, since := opt.StallAfter, a.progressAt
	switch a.level {
	case lvKernel, lvInitrd:
		window *= 2
	case lvKickstart, lvStage2:
		window *= 3
	case lvInstalling:
		window, since = opt.InstallStallAfter, a.activity
	}
	if now.Sub(since) <= window {
		return d
	}
	d.Stalled = true
	d.Cause, d.Hint = stall(a, opt, now.Sub(since).Truncate(time.Second))
	return d
}

// currentInstall returns the events after the latest change to install
// state and when that change happened.
func currentInstall(evs []store.Event) ([]store.Event, time.Time) {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Kind == "state" && str(&evs[i], "to") == "install" {
			return evs[i+1:], evs[i].At
		}
	}
	if len(evs) > 0 {
		return evs, evs[0].At
	}
	return nil, time.Time{}
}

func family(evs []store.Event) int {
	for i := len(evs) - 1; i >= 0; i-- {
		if strings.HasPrefix(evs[i].Kind, "dhcp.") || strings.HasPrefix(evs[i].Kind, "http.") {
			if f := num(&evs[i], "family"); f == 4 || f == 6 {
				return f
			}
		}
	}
	return 4
}

// fetched reports whether a transfer delivered its file. UEFI firmware
// aborts its first TFTP read after learning the size, so an aborted
// transfer is not progress, and neither is an HTTP error.
func fetched(e *store.Event) bool {
	if strings.HasPrefix(e.Kind, "tftp.") {
		done, ok := e.Data["completed"].(bool)
		return !ok || done
	}
	st := num(e, "status")
	return st == 0 || (st >= 200 && st < 400)
}

func stall(a attempt, opt Options, quiet time.Duration) (cause, hint string) {
	v6NoGW := opt.Family == 6 && !opt.HasGateway6
	if f := a.failure; f != nil {
		return failedFetch(f, quiet)
	}
	switch a.level {
	case lvDHCP:
		return stallDHCP(a, quiet)
	case lvLoader:
		return stallLoader(a, quiet)
	case lvConfig:
		return fmt.Sprintf("the loader fetched its configuration (%s) but no kernel was requested for %s", fetchName(a.config), quiet),
			"the menu may be waiting for a key (no default entry or timeout), or the kernel path in the configuration is wrong (a 404 would show in the timeline)"
	case lvKernel:
		return fmt.Sprintf("the kernel was fetched but no initrd for %s", quiet),
			"check the initrd path in the boot configuration; a loader without enough memory for the initrd also stops here"
	case lvInitrd:
		if opt.Family == 6 && (v6NoGW || hasEvidence(a, sigRace1)) {
			return "kernel and initrd were fetched but the kickstart never was: seed-000 race #1, the IPv6 default route had not been learnt from router advertisements when dracut fetched the kickstart (curl: Network is unreachable)" + quoted(a, sigRace1),
				"put the gateway in ip= (ip=[addr]::[gateway]:64:host:iface:none) or use the overlay hook that waits, with a bound, for the default route; a fixed sleep is not reliable"
		}
		return fmt.Sprintf("kernel and initrd were fetched but no kickstart was requested for %s: the kernel command line or the installer's network", quiet) + quoted(a, ""),
			"check inst.ks= (URL and build token), ip=/BOOTIF=/ifname= and that the NIC gets an address in the initrd (link, VLAN, DHCP); the console shows dracut's errors"
	case lvKickstart, lvStage2:
		what := "the kickstart was fetched but neither stage2 nor .treeinfo/repository metadata was requested"
		if a.level == lvStage2 {
			what = "stage2 was fetched but Anaconda never requested .treeinfo or repository metadata"
		}
		race3 := "seed-000 race #3 (NetworkManager re-initialised the NIC and dropped the default gateway while Anaconda fetched .treeinfo: \"Installation source not set up\")"
		if opt.Family == 6 && (v6NoGW || hasEvidence(a, sigRace3)) {
			return what + ": " + race3 + " or a bad stage2 URL" + quoted(a, sigRace3),
				"give the IPv6 gateway explicitly; Anaconda retries .treeinfo from EL7.3. Also check that inst.stage2=/inst.repo= and the kickstart's url point at a tree with .treeinfo and LiveOS/squashfs.img"
		}
		return what + ": a bad stage2 URL or " + race3 + quoted(a, ""),
			"check that inst.stage2=/inst.repo= and the kickstart's url point at a tree with .treeinfo and LiveOS/squashfs.img (a 404 would show in the timeline)"
	case lvInstalling:
		hint := "Anaconda may be waiting at a prompt (an incomplete kickstart stops an unattended install; inst.cmdline makes it fail instead) or a %post script hangs; the syslog lines in the timeline show its last words"
		if v6NoGW {
			hint += "; on IPv6 without a gateway, NetworkManager sets accept_ra=0 and the learnt route expires mid-install (seed-000 #4): give the gateway"
		}
		return fmt.Sprintf("installing, but no package fetch or installer log line for %s (%d packages fetched)", quiet, a.packages) + quoted(a, ""), hint
	}
	return "", ""
}

func stallDHCP(a attempt, quiet time.Duration) (string, string) {
	e := a.dhcp
	switch {
	case e == nil:
		return "", ""
	case e.Kind == "dhcp.ack":
		boot := a.bootFile
		if boot == "" {
			boot = str(e, "boot_file")
		}
		if boot == "" {
			boot = "none"
		}
		return fmt.Sprintf("DHCP ACK at %s (boot file %s) but no TFTP or HTTP request followed for %s", e.At.Format(time.TimeOnly), boot, quiet),
			"check 69/udp and next-server: a firewall must let TFTP reach kickstand and next-server (siaddr/option 66, or the DHCPv6 boot URL) must point at it"
	case e.Kind == "dhcp.nak":
		return fmt.Sprintf("DHCP NAK at %s: the client asked for an address it may not have", e.At.Format(time.TimeOnly)),
			"the host moved subnet or another DHCP server gave it a lease; check its reservation and that only one DHCP server answers on the segment"
	default:
		return fmt.Sprintf("the client sent %s but no DHCP ACK followed for %s", e.Kind, quiet),
			"another DHCP server may answer first, or the offer lacks what the firmware wants (PXEClient vendor class echoed, a boot file); look for a second DHCP server or proxyDHCP on the segment"
	}
}

func stallLoader(a attempt, quiet time.Duration) (string, string) {
	file := fetchName(a.loader)
	if a.loaders >= 3 && a.dhcp != nil && a.firmware == "ipxe" {
		return fmt.Sprintf("iPXE chainload loop: %s was fetched %d times and iPXE never asked for its script", file, a.loaders),
			"the DHCP answer to iPXE must be the script URL, not the iPXE binary again; some NIC ROMs (Mellanox FlexBoot) send no iPXE user class, so match option 175 or kickstand's own user class"
	}
	if a.shim {
		return stallSecureBoot(file, quiet)
	}
	fw := a.firmware
	if fw == "" {
		fw = "unknown"
	}
	cause := fmt.Sprintf("wrong loader for the arch: the loader %s was fetched but it asked for no configuration for %s; DHCP reported firmware %s", file, quiet, fw)
	if want := loaderFor(a.firmware); want != "" && !matchesFirmware(a.firmware, file) {
		cause += fmt.Sprintf(", which needs %s, and %s is not one", want, path.Base(file))
	} else {
		cause += " (a loader built for another architecture, e.g. x86-64 on ARM64, fails the same way)"
	}
	return cause, "make the loader match the client architecture the firmware sends (DHCP option 93 / DHCPv6 option 61) and check the loader can fetch its config over the same path (TFTP 69/udp or HTTP)"
}

// stallSecureBoot explains a chain that stopped inside Secure Boot's shim:
// the firmware refused the shim, or the shim refused the GRUB it fetched.
// Neither asks the network for anything after, so the last loader fetched
// says which.
func stallSecureBoot(file string, quiet time.Duration) (string, string) {
	if isShim(file) {
		return fmt.Sprintf("Secure Boot: the firmware fetched shim (%s) and asked for nothing after for %s: it refused to run it (\"Access Denied\" on the console: not signed by a key in the firmware's db), or shim could not load GRUB", file, quiet),
			"under Secure Boot the firmware runs only loaders signed by a key it trusts (Microsoft's UEFI CA signs distro shims): serve the distro's own signed shim (distro shim:) or Debian's shim-signed; kickstand doctor warns about unsigned loaders"
	}
	return fmt.Sprintf("Secure Boot: shim fetched %s and nothing followed for %s: shim refused to run it (\"Verification failed: (0x1A) Security Violation\" on the console), so that GRUB is not signed by the shim's vendor", file, quiet),
		"serve the GRUB signed by the same vendor as the shim (distro grub:, e.g. EFI/BOOT/grubx64.efi from the same media, or Debian's grub-efi-amd64-signed beside Debian's shim-signed); kickstand doctor warns about unsigned loaders"
}

// isShim recognises a Secure Boot shim by the names it is served under:
// shimx64.efi/shimaa64.efi, or the removable-media BOOTX64.EFI/BOOTAA64.EFI
// that EL media keep it as.
func isShim(file string) bool {
	b := strings.ToLower(path.Base(file))
	return strings.HasPrefix(b, "shim") && strings.HasSuffix(b, ".efi") || b == "bootx64.efi" || b == "bootaa64.efi"
}

// loaderFor names the loaders a firmware type can run.
func loaderFor(fw string) string {
	switch fw {
	case "bios":
		return "a BIOS loader (pxelinux.0, undionly.kpxe)"
	case "uefi", "uefi-http":
		return "an EFI loader (shimx64.efi, grubx64.efi, ipxe.efi)"
	}
	return ""
}

func matchesFirmware(fw, file string) bool {
	efi := strings.HasSuffix(strings.ToLower(file), ".efi")
	switch fw {
	case "bios":
		return !efi
	case "uefi", "uefi-http":
		return efi
	}
	return true
}

func failedFetch(f *store.Event, quiet time.Duration) (string, string) {
	name := fetchName(f)
	class := str(f, "class")
	if strings.HasPrefix(f.Kind, "http.") {
		class = strings.TrimPrefix(f.Kind, "http.")
	}
	if strings.HasPrefix(f.Kind, "tftp.") {
		return fmt.Sprintf("the TFTP transfer of %s did not complete (%d bytes sent) and nothing followed for %s", name, num(f, "bytes"), quiet),
			"TFTP data flows from an ephemeral port that a firewall or NAT without a TFTP helper drops; also try a smaller blksize (path MTU)"
	}
	st := num(f, "status")
	if class == "kickstart" && (st == 403 || st == 404) {
		return fmt.Sprintf("the kickstart request %s got %d: the build token is wrong or expired", name, st),
			"run kickstand host build HOST for a fresh token and boot again (the token expires after 6 h by default)"
	}
	return fmt.Sprintf("the request for %s (%s) got HTTP %d and nothing followed for %s", name, class, st, quiet),
		"the file is missing from kickstand's tree or the path in the boot configuration or kickstart is wrong"
}

// failure explains a failed callback from its log.
func failure(lines []string, detail string, opt Options) (string, string) {
	for i := len(lines) - 1; i >= 0; i-- {
		switch signature(lines[i]) {
		case sigRace1:
			return "the installer failed: the network was unreachable (seed-000 race #1 on IPv6 without a gateway): " + strings.TrimSpace(lines[i]),
				"put the gateway in ip= or wait for the default route before fetching"
		case sigRace2:
			return "the installer failed: SettingsNotFoundError (seed-000 race #2, dracut's ifcfg with BOOTPROTO=static and an empty IPADDR)",
				"fixed in NetworkManager 1.0 / EL7.3; on older releases remove BOOTPROTO from the ifcfg before Anaconda starts"
		case sigRace3:
			return "the installer failed: the installation source was not set up (seed-000 race #3, the gateway dropped while .treeinfo was fetched, or a bad repository URL): " + strings.TrimSpace(lines[i]),
				"give the IPv6 gateway explicitly (Anaconda retries .treeinfo from EL7.3) and check the kickstart's url/repo"
		}
	}
	cause := "the installer reported failure (%onerror)"
	if detail != "" {
		cause += ": " + detail
	}
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); looksLikeError(l) {
			return cause + "; last error: " + l, "the log tail below is the end of the uploaded installer log"
		}
	}
	if len(lines) == 0 {
		return cause, "no installer log was uploaded; check the %onerror snippet"
	}
	return cause, "the log tail below is the end of the uploaded installer log"
}

func looksLikeError(l string) bool {
	lo := strings.ToLower(l)
	for _, w := range []string{"error", "traceback", "failed", "fatal", "exception"} {
		if strings.Contains(lo, w) {
			return true
		}
	}
	return false
}

const (
	sigRace1 = "race1"
	sigRace2 = "race2"
	sigRace3 = "race3"
)

// signature recognises installer log lines that identify a seed-000 race.
func signature(line string) string {
	switch {
	case strings.Contains(line, "Network is unreachable"):
		return sigRace1
	case strings.Contains(line, "SettingsNotFoundError"):
		return sigRace2
	case strings.Contains(line, "Installation source not set up"), strings.Contains(line, "Error setting up software source"),
		strings.Contains(line, ".treeinfo") && strings.Contains(strings.ToLower(line), "fail"):
		return sigRace3
	}
	return ""
}

func hasEvidence(a attempt, sig string) bool {
	for _, l := range a.evidence {
		if signature(l) == sig {
			return true
		}
	}
	return false
}

// quoted appends the last matching syslog line, the installer's own words.
func quoted(a attempt, sig string) string {
	for i := len(a.evidence) - 1; i >= 0; i-- {
		if sig == "" || signature(a.evidence[i]) == sig {
			return fmt.Sprintf(" (the installer logged: %q)", a.evidence[i])
		}
	}
	return ""
}

func tail(log string, n int) []string {
	log = strings.TrimRight(strings.ReplaceAll(log, "\r\n", "\n"), "\n")
	if log == "" {
		return nil
	}
	lines := strings.Split(log, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines
}

func fetchName(e *store.Event) string {
	if e == nil {
		return ""
	}
	for _, k := range []string{"path", "file"} {
		if s := str(e, k); s != "" {
			return s
		}
	}
	return e.Detail
}

// str and num read event data that may have come back through JSON, where
// every number is a float64.
func str(e *store.Event, key string) string {
	switch v := e.Data[key].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func num(e *store.Event, key string) int {
	switch v := e.Data[key].(type) {
	case int:
		return v
	case int64:
		return int(v)
	case int32:
		return int(v)
	case float64:
		return int(v)
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	case string:
		n, _ := strconv.Atoi(v)
		return n
	}
	return 0
}
