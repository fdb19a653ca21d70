// Package diagnose turns a host's timeline into the three answers an
// operator installing many machines needs: how far the install got, whether
// it is stuck, and the likely reason. Without it the evidence is spread over
// DHCP, TFTP, HTTP and syslog logs and the operator ends up logging in to
// each installer (seed 000's author did).
//
// A stall is recognised by what did NOT happen next: each stage of the boot
// chain (DHCP, loader, loader config, kernel and initrd, kickstart, stage2,
// repository and packages, callback) is normally followed by the next
// request within a short time, so the stage where the chain stopped names
// the suspect (a firewall on 69/udp, a loader for the wrong firmware, the
// IPv6 races of seed 000, a broken boot-once). The signatures come from the
// field reports and REFERENCE.md §5.
//
// Diagnose is pure: it reads events and a clock and returns a value, so the
// same code serves the API, the UI and the tests built from recorded
// sequences.
package diagnose
