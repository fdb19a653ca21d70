// Package tftp is kickstand's read-only TFTP server: RFC 1350 with option
// negotiation (RFC 2347), blksize (2348), tsize and timeout (2349) and
// windowsize (RFC 7440), over IPv4 and IPv6.
//
// It is purpose-built rather than github.com/pin/tftp/v3 because boot
// loaders, kernels and initrds are large and lock-step TFTP is slow:
// windowsize, which lets a client take many blocks per acknowledgement, is
// the one lever that changes that, and pin/tftp has no RFC 7440 support. The
// benchmark in bench/tftp (32 atftp clients × 64 MiB over a veth, 2 cores,
// one run side by side) measured:
//
//	kickstand, blksize 1468, windowsize 16   214 MB/s   1.85× tftpd-hpa
//	kickstand, blksize 1468, lock-step        98 MB/s   0.84×
//	tftpd-hpa, blksize 1468                  116 MB/s   1.00×
//	dnsmasq,   blksize 1468                  104 MB/s   0.89×
//	pin/tftp,  blksize 1468                  115 MB/s   0.99×
//	kickstand, blksize 512, windowsize 16     73 MB/s   1.72×
//	kickstand, blksize 512, lock-step         36 MB/s   0.85×
//	tftpd-hpa, blksize 512                    43 MB/s   1.00×
//
// So in lock-step it is level with pin/tftp and dnsmasq and a little behind
// tftpd-hpa (run-to-run spread is about 20%), and with windows it is about
// twice as fast as any of them. A boot server also needs things a general
// library leaves out: a pluggable Opener so rendered configs (pxelinux.cfg/*,
// grub.cfg-*) and files share one path, replies from the address each
// request was sent to on multi-homed hosts, a hard limit on concurrent
// transfers, and a per-transfer report for the install timeline.
//
// A window goes out in one sendmmsg(2) call, which halved the server's CPU
// per MB in window mode (docs/performance.md has the profile and the
// figures); in lock-step most of the server's CPU is the kernel's work for
// each packet, which a user-space server cannot batch away.
//
// Behaviour worth knowing:
//   - blksize is granted as asked (up to 65464), never clamped to the MTU;
//     clamping cost pin/tftp most of its throughput (pin/tftp#51).
//   - The retransmission timeout adapts to the measured round trip and backs
//     off while the client is silent; a client's timeout option is its
//     ceiling. Duplicate ACKs are never answered in lock-step (Sorcerer's
//     Apprentice); in window mode the first one rolls the window back.
//   - The OACK is sent once: clients recover its loss themselves, and atftp
//     aborts on a repeated OACK.
//   - Block numbers wrap from 65535 to 0, so files over 32 MiB at 512-byte
//     blocks work with tftp-hpa, atftp, curl and iPXE.
//   - UEFI firmware asks for tsize and aborts after the OACK before fetching
//     for real; that is reported as a Probe and logged at debug level.
//   - tsize 0 is not acknowledged: curl rejects it as invalid.
package tftp
