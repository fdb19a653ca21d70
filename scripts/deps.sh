#!/usr/bin/env bash
# Installs the Debian packages that kickstand uses, only when something is
# missing. Safe to run repeatedly; needs root for apt-get.
#
#   deps.sh           what the tests and benchmarks use (make test, make bench)
#   deps.sh demo      only what make demo uses
#   deps.sh --list [demo]   print the packages of that list, one a line
set -euo pipefail

list=test
if [[ ${1:-} == --list ]]; then print=1; shift; fi
[[ ${1:-} == demo ]] && list=demo

# make demo: a QEMU VM with SeaBIOS and iPXE's e1000 ROM, the test installer
# (busybox initrd, cpio), and a network namespace (iproute2).
demo=(
  "qemu-system-x86_64:qemu-system-x86"
  "/usr/lib/ipxe/qemu/pxe-e1000.rom:ipxe-qemu"
  "/bin/busybox:busybox-static"
  "cpio:cpio"
  "ip:iproute2"
)

# command-or-file -> package
need=(
  "qemu-system-x86_64:qemu-system-x86"
  "qemu-img:qemu-utils"
  "/usr/lib/ipxe/qemu/efi-e1000.rom:ipxe-qemu"
  "/usr/lib/ipxe/undionly.kpxe:ipxe"
  "/usr/share/OVMF/OVMF_CODE_4M.fd:ovmf"
  "/usr/lib/grub/x86_64-efi/monolithic/grubnetx64.efi:grub-efi-amd64-bin"
  "/usr/lib/PXELINUX/pxelinux.0:pxelinux"
  "/usr/lib/syslinux/modules/bios/ldlinux.c32:syslinux-common"
  "/bin/busybox:busybox-static"
  "dnsmasq:dnsmasq-base"
  "dhclient:isc-dhcp-client"
  "udhcpc:udhcpc"
  "tftp:tftp-hpa"
  "atftp:atftp"
  "in.tftpd:tftpd-hpa"
  "nft:nftables"
  "curl:curl"
  "cpio:cpio"
  "ip:iproute2"
  "tc:iproute2"
  "xorriso:xorriso"
  "logger:bsdutils"
  "radvd:radvd"
  "perfdhcp:kea-admin"
  "dhcrelay:isc-dhcp-relay"
  "tcpdump:tcpdump"
  "kea-dhcp4:kea-dhcp4-server"
  "kea-dhcp6:kea-dhcp6-server"
  "mksquashfs:squashfs-tools"
  "promtool:prometheus"
  "chromium:chromium"
  "/usr/lib/postgresql:postgresql"
  "systemd-analyze:systemd"
  "setpriv:util-linux"
  "wrk:wrk"
  "nginx:nginx-light"
  # Real firmware breadth (issue 14): AAVMF on qemu-system-aarch64, and mmdebstrap for the real
  # dracut image. shim-signed, grub-efi-amd64-signed, arm64 GRUB, kernel and busybox are fetched
  # with apt-get download by build-test-installer.sh, never installed.
  "qemu-system-aarch64:qemu-system-arm"
  "/usr/share/AAVMF/AAVMF_CODE.fd:qemu-efi-aarch64"
  "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd:ovmf"
  "mmdebstrap:mmdebstrap"
  # Shell completion is tested in a real bash with bash-completion's helpers.
  "/usr/share/bash-completion/bash_completion:bash-completion"
)

if [[ $list == demo ]]; then need=("${demo[@]}"); fi
if [[ -n ${print:-} ]]; then
  for pair in "${need[@]}"; do echo "${pair#*:}"; done | sort -u
  exit 0
fi

# apt-get download of arm64 packages needs the architecture in dpkg and its package lists.
if [[ $list == test ]] && ! dpkg --print-foreign-architectures | grep -qx arm64; then
  if [[ $(id -u) != 0 ]]; then echo "deps: need root to dpkg --add-architecture arm64" >&2; exit 1; fi
  echo "deps: adding the arm64 architecture (for apt-get download of arm64 kernel, busybox, GRUB)" >&2
  dpkg --add-architecture arm64
  apt-get update -qq
fi

missing=()
for pair in "${need[@]}"; do
  what=${pair%%:*}; pkg=${pair#*:}
  if [[ $what == /* ]]; then [[ -e $what ]] && continue
  else command -v "$what" >/dev/null 2>&1 && continue; fi
  missing+=("$pkg")
done
if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "deps: installing ${missing[*]}" >&2
  if [[ $(id -u) != 0 ]]; then echo "deps: need root to apt-get install ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
