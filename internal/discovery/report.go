// Package discovery is the waiting room for machines kickstand does not
// know (menu.unknown: discover). iPXE reports what its firmware knows (MAC,
// SMBIOS UUID, manufacturer, product, serial, asset tag, NIC chip, build
// and platform) in a GET, because Debian's iPXE has no params and so no
// POST, and keeps polling; kickstand keeps the report as a discovered
// machine, never as a host. An operator, the API or a rule assigns it
// through the lifecycle (install.Service.AssignDiscovered), and the next
// poll answers with the install.
//
// Everything an unknown machine can make kickstand store is bounded here:
// requests per address, report writes per MAC, the field lengths, and the
// number of machines kept (the store's cap, with stale machines giving way).
package discovery

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/kickstand/kickstand/internal/inventory"
	"github.com/kickstand/kickstand/internal/store"
)

// Bounds on a report. SMBIOS strings are at most 64 characters in
// practice; 128 bytes leaves room for a percent-encoded one.
const (
	MaxQuery = 2048
	MaxField = 128
)

var (
	uuidLike  = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	shortWord = regexp.MustCompile(`^[a-z0-9_-]{0,16}$`)
	digits    = regexp.MustCompile(`^[0-9]{0,10}$`)
)

// ErrBadReport marks a report kickstand refuses (400).
var ErrBadReport = errors.New("bad discovery report")

// ParseReport checks a report's raw query: only the known fields, each at
// most once, within MaxField bytes of printable UTF-8, and a MAC. The
// error names the field at fault.
func ParseReport(raw string) (store.Discovered, error) {
	var d store.Discovered
	if len(raw) > MaxQuery {
		return d, fmt.Errorf("%w: query is %d bytes (at most %d)", ErrBadReport, len(raw), MaxQuery)
	}
	q, err := url.ParseQuery(raw)
	if err != nil {
		return d, fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	fields := map[string]*string{
		"mac": &d.MAC, "uuid": &d.UUID, "manufacturer": &d.Manufacturer, "product": &d.Product,
		"serial": &d.Serial, "asset": &d.Asset, "chip": &d.Chip, "buildarch": &d.BuildArch,
		"platform": &d.Platform, "memsize": &d.Memory,
	}
	for k, vs := range q {
		p, ok := fields[k]
		if !ok {
			return d, fmt.Errorf("%w: unknown field %q", ErrBadReport, trunc(k))
		}
		if len(vs) != 1 {
			return d, fmt.Errorf("%w: field %s given %d times", ErrBadReport, k, len(vs))
		}
		v := strings.TrimSpace(vs[0])
		if len(v) > MaxField {
			return d, fmt.Errorf("%w: field %s is %d bytes (at most %d)", ErrBadReport, k, len(v), MaxField)
		}
		if !utf8.ValidString(v) || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
			return d, fmt.Errorf("%w: field %s has unprintable characters", ErrBadReport, k)
		}
		*p = v
	}
	mac := inventory.NormalMAC(d.MAC)
	if mac == "" {
		return d, fmt.Errorf("%w: field mac: %q is not a MAC", ErrBadReport, trunc(d.MAC))
	}
	d.MAC = mac
	for _, c := range []struct {
		name, v string
		re      *regexp.Regexp
	}{{"buildarch", d.BuildArch, shortWord}, {"platform", d.Platform, shortWord}, {"memsize", d.Memory, digits}} {
		if !c.re.MatchString(c.v) {
			return d, fmt.Errorf("%w: field %s: %q is not a %s", ErrBadReport, c.name, trunc(c.v), c.name)
		}
	}
	if d.UUID != "" && !uuidLike.MatchString(d.UUID) {
		return d, fmt.Errorf("%w: field uuid: %q is not a UUID", ErrBadReport, trunc(d.UUID))
	}
	d.UUID = inventory.NormalUUID(d.UUID)
	return d, nil
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
