// Package overlay builds the small images kickstand adds to vendor installers
// so that seed 000's IPv6 races are fixed without anyone rebuilding
// initrd.img or squashfs.img: an overlay initrd (a second, concatenated
// initrd the kernel unpacks over the vendor one) and an Anaconda updates.img.
//
// The bytes are deterministic (internal/initrd writes newc with fixed
// metadata), built on first request and cached, so every machine and every
// restart gets the same image and the same checksum.
package overlay

import (
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/kickstand/kickstand/internal/boot"
	"github.com/kickstand/kickstand/internal/initrd"
)

// Images builds and caches the generated images.
type Images struct {
	mu    sync.Mutex
	cache map[string][]byte
}

var names = regexp.MustCompile(`^kickstand/(overlay/wait-v6-route|updates/el7-v6)-([0-9]{1,4})s\.img$`)

// Open returns the image for a served name, or ok=false if the name is not
// one of kickstand's images.
func (im *Images) Open(name string) (b []byte, ok bool, err error) {
	m := names.FindStringSubmatch(name)
	if m == nil {
		return nil, false, nil
	}
	secs, _ := strconv.Atoi(m[2])
	im.mu.Lock()
	defer im.mu.Unlock()
	if b, ok := im.cache[name]; ok {
		return b, true, nil
	}
	wait := time.Duration(secs) * time.Second
	switch m[1] {
	case "overlay/wait-v6-route":
		b, err = WaitRouteOverlay(wait)
	default:
		b, err = EL7Updates(wait)
	}
	if err != nil {
		return nil, true, fmt.Errorf("build %s: %w", name, err)
	}
	if im.cache == nil {
		im.cache = map[string][]byte{}
	}
	im.cache[name] = b
	return b, true, nil
}

// HookPaths are where the race-#1 hook goes. dracut sources
// initqueue/online hooks in name order when the interface comes up, and
// Anaconda's kickstart fetch is 11-fetch-kickstart-net.sh, so 10- runs just
// before it (where seed 000 put its sleep). A hook in initqueue/finished
// would run too late: it only gates the end of the initqueue, not the fetch.
//
// Every dracut since EL7 sources /lib/dracut/hooks, and creates its
// initqueue/online directory: on EL7+ /lib is a symlink to usr/lib, on
// older layouts a directory, and dracut-ng keeps the hooks in
// /var/lib/dracut/hooks with /lib/dracut/hooks a symlink to them. The
// overlay therefore carries the file alone, with no directory entries
// (initrd.OverlayFiles), so the kernel writes it through whichever symlinks
// the image has; the /var/lib copy is for dracut-ng images where the two
// are separate directories, and the hook runs its wait only once.
var HookPaths = []string{
	"lib/dracut/hooks/initqueue/online/10-kickstand-wait-v6-route.sh",
	"var/lib/dracut/hooks/initqueue/online/10-kickstand-wait-v6-route.sh",
}

// WaitRouteOverlay is race #1's fix: a hook that waits, with a bound, for
// an IPv6 default route learnt from router advertisements. It polls rather
// than sleeping a fixed time (seed 000's sleep 4 was either too short or
// wasted), and logs to the console either way.
//
// It uses only POSIX sh builtins, ip and sleep: a stock dracut image has no
// head, wc or date. Its bound is wall time, read from /proc/uptime, not a
// count of loop passes: under a slow CPU each `ip` call takes longer than
// the poll interval, and "30 s" of passes was minutes.
func WaitRouteOverlay(wait time.Duration) ([]byte, error) {
	hook := fmt.Sprintf(`# kickstand: seed 000 race #1. dracut brings the NIC up with a static IPv6
# address and fetches the kickstart at once, before a router advertisement has
# given it a default route ("Network is unreachable"). Wait for the route, at
# most %[1]d s of wall time. This file is sourced by dracut: it must not exit,
# and it uses only sh builtins, ip and sleep, which every dracut image has.
kickstand_uptime() {
    _ks_up=
    read -r _ks_up _ks_rest </proc/uptime 2>/dev/null
    _ks_up=${_ks_up%%%%.*}
    case $_ks_up in ''|*[!0-9]*) _ks_up= ;; esac
}
kickstand_say() {
    echo "kickstand: $*" >&2
    echo "kickstand: $*" >/dev/console 2>/dev/null
}
kickstand_wait_v6_route() {
    # Sourced from more than one hooks directory on some images: wait once.
    [ -z "${kickstand_route_waited:-}" ] || return 0
    kickstand_route_waited=1
    kickstand_uptime
    _ks_start=${_ks_up:-0}
    # Passes bound the loop only if /proc/uptime cannot be read.
    _ks_n=0
    while :; do
        _ks_route=$(ip -6 route show default 2>/dev/null)
        kickstand_uptime
        if [ -n "$_ks_route" ]; then
            # First line only, without head.
            _ks_nl='
'
            kickstand_say "IPv6 default route after $((${_ks_up:-0} - _ks_start)) s: ${_ks_route%%%%"$_ks_nl"*}"
            return 0
        fi
        if [ -n "$_ks_up" ]; then
            [ "$((_ks_up - _ks_start))" -lt %[1]d ] || break
        else
            _ks_n=$((_ks_n + 1))
            [ "$_ks_n" -lt %[2]d ] || break
        fi
        sleep 0.2 2>/dev/null || sleep 1
    done
    kickstand_say "no IPv6 default route after %[1]d s; fetching anyway"
    return 0
}
kickstand_wait_v6_route
`, int(wait/time.Second), int(wait/(200*time.Millisecond)))
	var files []initrd.File
	for _, p := range HookPaths {
		files = append(files, initrd.File{Path: p, Mode: 0o755, Data: []byte(hook)})
	}
	return initrd.OverlayFiles(files, initrd.Gzip)
}

// EL7Updates is the updates.img for races #2 and #3 on EL7.0-7.2: a unit
// that runs before Anaconda, removes dracut's BOOTPROTO line from ifcfg
// files with an empty IPADDR (so NetworkManager does not make a second
// connection), then waits, with a bound, for an IPv6 default route (so the
// .treeinfo download does not race NetworkManager's reinit).
func EL7Updates(wait time.Duration) ([]byte, error) {
	unit := `[Unit]
Description=kickstand: seed 000 IPv6-only fixes #2 and #3
DefaultDependencies=no
Before=anaconda.target anaconda.service
After=basic.target

[Service]
Type=oneshot
ExecStart=/usr/libexec/kickstand-v6fix.sh
StandardOutput=journal+console
RemainAfterExit=yes
`
	script := fmt.Sprintf(`#!/bin/bash
# kickstand: seed 000 races #2 and #3 (EL7.0-7.2, IPv6 only). Like the race-#1
# hook it uses only shell builtins, ip, sleep and sed, and bounds its wait in
# wall time (/proc/uptime), so it runs the same in any image.
say() { echo "kickstand: $*"; }
uptime_s() { read -r up rest </proc/uptime 2>/dev/null; up=${up%%%%.*}; }
for f in "${KICKSTAND_IFCFG_DIR:-/etc/sysconfig/network-scripts}"/ifcfg-*; do
    [ -f "$f" ] || continue
    empty=
    while IFS= read -r line || [ -n "$line" ]; do
        [ "$line" = "IPADDR=" ] && empty=1
    done <"$f"
    if [ -n "$empty" ]; then
        say "$f has an empty IPADDR; removing BOOTPROTO so NetworkManager keeps its connection"
        sed -i '/^BOOTPROTO=/d' "$f"
    fi
done
uptime_s
start=${up:-0}
while :; do
    route=$(ip -6 route show default 2>/dev/null)
    uptime_s
    if [ -n "$route" ]; then
        say "IPv6 default route present after $((${up:-0} - start)) s: ${route%%%%$'\n'*}"
        exit 0
    fi
    [ "$((${up:-0} - start))" -lt %[1]d ] || break
    sleep 1
done
say "no IPv6 default route after %[1]d s; starting Anaconda anyway"
`, int(wait/time.Second))
	return initrd.UpdatesImage([]initrd.File{
		{Path: "usr/lib/systemd/system/kickstand-v6fix.service", Mode: 0o644, Data: []byte(unit)},
		{Path: "usr/libexec/kickstand-v6fix.sh", Mode: 0o755, Data: []byte(script)},
		{Path: "etc/systemd/system/basic.target.wants/kickstand-v6fix.service", Mode: fs.ModeSymlink | 0o777, Link: "/usr/lib/systemd/system/kickstand-v6fix.service"},
	})
}

// Names reports the served names for a bound, for tests and docs.
func Names(wait time.Duration) []string {
	return []string{boot.WaitRouteOverlay(wait), boot.EL7UpdatesImage(wait)}
}
