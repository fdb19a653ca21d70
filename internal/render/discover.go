package render

import (
	"bytes"
	"fmt"
	"time"
)

// DiscoveryFields are what a discovery report carries: the query name and
// the iPXE setting that fills it. Debian 12's iPXE (2019) expands all of
// them but memsize, which newer builds have; an unknown setting expands to
// nothing, so the script uses it when present. ${mac} is never written
// :uristring (that build then gives "RT" and cuts the URL short).
var DiscoveryFields = []struct{ Name, Setting string }{
	{"mac", "${mac}"},
	{"uuid", "${uuid}"},
	{"manufacturer", "${manufacturer:uristring}"},
	{"product", "${product:uristring}"},
	{"serial", "${serial:uristring}"},
	{"asset", "${asset:uristring}"},
	{"chip", "${net0/chip:uristring}"},
	{"buildarch", "${buildarch}"},
	{"platform", "${platform}"},
	{"memsize", "${memsize}"},
}

// DiscoveryPath is where a waiting machine reports and asks whether it has
// been assigned: one request does both, so a machine kickstand forgot (a
// restart, its place given to another past the cap) is known again at its
// next poll.
const DiscoveryPath = "/discover"

// ipxeDiscover is the waiting room. Each answer to the poll is either the
// host's install (booted without a reboot) or a short script that sleeps
// for the poll interval kickstand chose, with jitter, and returns; a
// failed poll (kickstand down, 429) waits retry seconds before the next.
// chain --autofree, or the answers pile up as images and the kernel gets
// them as extra initrds.
func ipxeDiscover(b *bytes.Buffer, base string) {
	b.WriteString("echo kickstand: this machine is not in the inventory; reporting it and waiting to be assigned\n")
	b.WriteString(":kickstand_poll\nchain --autofree " + base + DiscoveryPath + "?")
	for i, f := range DiscoveryFields {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(f.Name + "=" + f.Setting)
	}
	b.WriteString(" || goto kickstand_retry\ngoto kickstand_poll\n:kickstand_retry\nsleep 10\ngoto kickstand_poll\n")
}

// IPXEWait is the answer to a poll of a machine not yet assigned: wait,
// then return to the loop.
func IPXEWait(wait time.Duration, why string) []byte {
	s := int(wait.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return fmt.Appendf(nil, "#!ipxe\necho kickstand: %s; asking again in %d s\nsleep %d\nexit 0\n", ipxeQuote(why), s, s)
}
