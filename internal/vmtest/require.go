// Package vmtest is kickstand's harness for end-to-end tests and `make demo`: it builds the test
// "installer" (a real Debian kernel plus a busybox initrd that behaves like dracut and Anaconda
// from the network's point of view), creates throw-away network namespaces joined by a bridge,
// and boots QEMU VMs in them with the firmware real machines use.
//
// Everything here stays off the host's own network: all traffic is inside namespaces the Lab
// creates and removes, on 192.0.2.0/24 and 2001:db8::/64.
package vmtest

import (
	"os"
	"os/exec"
	"testing"
)

// RequirePeers reports whether missing tools or privileges must fail tests instead of skipping
// them. `make test` sets KICKSTAND_REQUIRE_PEERS=1 so that CI cannot go green by skipping the
// real-client tests.
func RequirePeers() bool { return os.Getenv("KICKSTAND_REQUIRE_PEERS") == "1" }

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if RequirePeers() {
		t.Fatalf(format+" (KICKSTAND_REQUIRE_PEERS=1)", args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips (or fails, see RequirePeers) unless the test runs as root, which namespaces,
// taps and QEMU networking need.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, "needs root for network namespaces")
	}
}

// Need skips (or fails, see RequirePeers) unless every tool is available. A tool is a command
// looked up in PATH, or an absolute path that must exist (firmware images, loaders).
func Need(t testing.TB, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if len(tool) > 0 && tool[0] == '/' {
			if _, err := os.Stat(tool); err != nil {
				skipOrFail(t, "needs %s: %v", tool, err)
			}
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, "needs %s in PATH (see scripts/deps.sh)", tool)
		}
	}
}

// NeedVM combines the checks every VM test makes: root, ip, QEMU, busybox (for the installer
// build) and the tools the build script uses.
func NeedVM(t testing.TB) {
	t.Helper()
	RequireRoot(t)
	Need(t, "ip", "qemu-system-x86_64", "timeout", "busybox", "cpio", "gzip", "dpkg-deb", "apt-get", "flock")
}
