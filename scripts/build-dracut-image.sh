#!/usr/bin/env bash
# build-dracut-image.sh OUTDIR
#
# Builds a real dracut 059 initramfs (Debian 12's dracut and dracut-network) for the real-dracut
# replay of seed 000's race #1 (internal/e2e, TestRealDracutRace1):
#   OUTDIR/vmlinuz      Debian's amd64 kernel (the same package as the test installer's)
#   OUTDIR/initrd.img   dracut --no-hostonly with network-legacy and testdata/dracut/90kstest
#   OUTDIR/manifest.txt kernel, dracut version, modules
#
# Nothing is installed on the host: mmdebstrap builds a throw-away Debian 12 root (80 s) in which
# dracut runs (45-90 s); installing dracut on the host would replace initramfs-tools and upgrade
# systemd. Cached: nothing is done while OUTDIR/key matches the content of this script and
# testdata/dracut/. Callers keep OUTDIR under build/ (git-ignored).
#
# Environment: KSTEST_FORCE=1 rebuilds even if the cache is fresh.
set -euo pipefail

die() { echo "build-dracut-image: $*" >&2; exit 1; }
[[ $# -eq 1 ]] || die "usage: $0 OUTDIR"
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(dirname "$(dirname "$script")")
src="$repo/testdata/dracut"
mkdir -p "$1"
out=$(readlink -f "$1")

# The cache key is the content of this script and testdata/dracut/ (not mtimes: an edit made while
# a build runs must not be taken for built).
key=$(cd "$repo" && find scripts/build-dracut-image.sh testdata/dracut -type f -print0 | LC_ALL=C sort -z |
  xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
exec 9>"$out/.lock"
flock 9
if [[ ${KSTEST_FORCE:-0} != 1 && -s $out/vmlinuz && -s $out/initrd.img && $(cat "$out/key" 2>/dev/null) == "$key" ]]; then
  echo "build-dracut-image: up to date: $out" >&2
  exit 0
fi
[[ $(id -u) == 0 ]] || die "needs root (mmdebstrap's root mode, chroot)"
command -v mmdebstrap >/dev/null || die "mmdebstrap missing: run scripts/deps.sh"

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The kernel: the versioned package behind linux-image-amd64, extracted apart from the root
# (dpkg-deb -x into the root would turn its lib -> usr/lib symlink into a directory).
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
[[ -n $pkg ]] || die "cannot resolve linux-image-amd64 (apt-get update?)"
(cd "$work" && apt-get download -q -o APT::Sandbox::User=root "$pkg" >&2)
dpkg-deb -x "$work/${pkg}"_*.deb "$work/kernel"
kver=$(ls "$work/kernel/lib/modules")
[[ -n $kver ]] || die "no lib/modules in $pkg"

# The host's own package sources (deb822 or one-line), so the root comes from the same mirror.
sources=
for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
  [[ -f $f ]] && grep -qs bookworm "$f" && { sources=$f; break; }
done
[[ -n $sources ]] || die "no bookworm entry in the host's apt sources"

mods="bash systemd systemd-initrd dracut-systemd udev-rules base fs-lib kernel-network-modules qemu qemu-net network-legacy network url-lib kstest shutdown"
echo "build-dracut-image: mmdebstrap + dracut $kver (about 3 minutes)" >&2
mmdebstrap --mode=root --variant=apt --format=null \
  --include=dracut,dracut-network,curl,iproute2,systemd,udev,kmod,cpio,gzip,zstd,procps \
  --customize-hook="mkdir -p \"\$1/usr/lib/modules\" && cp -a '$work/kernel/lib/modules/$kver' \"\$1/usr/lib/modules/\"" \
  --customize-hook="chroot \"\$1\" depmod -a '$kver'" \
  --customize-hook="cp -a '$src/90kstest' \"\$1/usr/lib/dracut/modules.d/\"" \
  --customize-hook="chroot \"\$1\" dracut --force --no-hostonly --kver '$kver' --gzip -m '$mods' /boot/initrd.img" \
  --customize-hook="chroot \"\$1\" dpkg-query -W -f '\${Version}' dracut >'$work/dracut-version'" \
  --customize-hook="cp \"\$1/boot/initrd.img\" '$work/initrd.img'" \
  bookworm /dev/null "$sources" >&2

{
  echo "kernel: $pkg $kver"
  echo "dracut: $(cat "$work/dracut-version")"
  echo "modules: $mods"
  echo "initrd-bytes: $(stat -c %s "$work/initrd.img")"
} >"$work/manifest.txt"
cp "$work/kernel/boot/vmlinuz-$kver" "$work/vmlinuz"
mv -f "$work/vmlinuz" "$out/vmlinuz"
mv -f "$work/manifest.txt" "$out/manifest.txt"
mv -f "$work/initrd.img" "$out/initrd.img"
echo "$key" >"$out/key"
echo "build-dracut-image: built $out/initrd.img ($(stat -c %s "$out/initrd.img") bytes)" >&2
