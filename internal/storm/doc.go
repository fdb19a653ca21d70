// Package storm is kickstand's boot-storm simulator (issue 8): N machines,
// each with its own MAC and a reservation in the inventory, power on at
// once and boot as a BIOS PXE ROM chaining iPXE does: DHCP (relayed, so one
// simulator address stands for a whole rack behind a relay), the loader
// over TFTP, the iPXE script, kernel and initrd over HTTP, the kickstart
// through the token URL in the script, and the installer's built callback.
// It reports successes, failures by step, latency percentiles per step and
// end to end, and the aggregate throughput against the link's measured
// capacity. `kickstand bench storm` and bench/storm/run.sh drive it.
package storm
