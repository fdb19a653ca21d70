// Package tftp is kickstand's read-only TFTP server: RFC 1350 with option
// negotiation (RFC 2347), blksize (2348), tsize and timeout (2349) and
// windowsize (RFC 7440), over IPv4 and IPv6.
//
// It is purpose-built rather than github.com/pin/tftp/v3 because boot
// loaders and kernels are large and firmware TFTP is slow: windowsize, which
// lets a client take many blocks per acknowledgement, is the one lever that
// changes that, and pin/tftp has no RFC 7440 support. A boot server also needs
// things a general library leaves out: a pluggable Opener so rendered configs
// (pxelinux.cfg/*, grub.cfg-*) and files share one path, replies from the
// address each request was sent to on multi-homed hosts, a hard limit on
// concurrent transfers, and a per-transfer report for the install timeline.
// bench/tftp measures it against tftpd-hpa, dnsmasq and pin/tftp side by side.
//
// Behaviour worth knowing:
//   - blksize is granted as asked (up to 65464), never clamped to the MTU;
//     clamping cost pin/tftp most of its throughput (pin/tftp#51).
//   - The retransmission timeout adapts to the measured round trip; a
//     client's timeout option is used as its ceiling.
//   - Block numbers wrap from 65535 to 0, so files over 32 MiB at 512-byte
//     blocks work with tftp-hpa, atftp, curl and iPXE.
//   - UEFI firmware asks for tsize and aborts after the OACK before fetching
//     for real; that is reported as a Probe and logged at debug level.
package tftp
