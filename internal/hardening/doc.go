// Package hardening holds kickstand's black-box tests against hostile
// traffic and crashes: the real binary is built, started with
// `kickstand serve` on loopback or inside network namespaces the tests
// create, attacked (DHCP starvation, TFTP and HTTP floods, malformed
// packets), killed with SIGKILL at random moments, and checked from the
// outside (its answers, logs, store, /proc). The package has no code of its
// own: it tests the product as an operator runs it.
//
// Every load loop is bounded in count and time; the longer variants run
// from scripts/stress.sh (make stress) with KICKSTAND_STRESS=1.
package hardening
