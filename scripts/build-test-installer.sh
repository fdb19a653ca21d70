#!/usr/bin/env bash
# build-test-installer.sh [--arch amd64|arm64] OUTDIR
# build-test-installer.sh --loaders OUTDIR
# build-test-installer.sh --dracut OUTDIR
#
# Builds the fake "installer" that e2e tests and `make demo` boot in QEMU:
#   OUTDIR/vmlinuz      a real Debian kernel (from the versioned linux-image-*-<arch> package; Debian
#                       signs it, so it also boots under Secure Boot)
#   OUTDIR/initrd.img   busybox-static + NIC modules + testdata/installer/ (the /init), newc cpio, gzip
#   OUTDIR/manifest.txt what went in (kernel package/version, busybox version, module load order)
#
# Why Debian packages and not a kernel we build: the tests must boot the same kind of kernel a real
# installer boots, and a fresh Debian 12 machine can produce it with apt alone.
#
# Cached: nothing is done when both outputs exist and are newer than this script and every file
# under testdata/installer/. The extracted kernel and modules are kept in OUTDIR/kernel/<package>/
# so that editing /init does not download the 70 MB package again.
# Deterministic: sorted file list, mtimes 0, owner 0:0, cpio --reproducible, gzip -n.
# Concurrency: parallel callers (go test ./... runs packages in parallel) serialise on OUTDIR/.lock.
#
# --arch arm64 builds the same installer for an aarch64 guest (qemu-system-aarch64 -M virt): the
# arm64 kernel and busybox-static:arm64 are fetched with apt-get download (the arm64 architecture
# must be added to dpkg, as scripts/deps.sh does); nothing arm64 is installed on the host.
#
# --loaders fetches the loaders that Debian ships in packages a build machine should not install
# (shim-signed's postinst would run grub-install) or cannot (arm64 GRUB), into OUTDIR:
#   shimx64.efi (shim-signed), grubx64.efi (grub-efi-amd64-signed's netboot GRUB, signed by
#   Debian), grubaa64.efi (grub-efi-arm64-bin:arm64's grubnetaa64.efi), under the names
#   kickstand hands out, for a server.loaders directory.
#
# --dracut builds a real dracut 059 initramfs (scripts/build-dracut-image.sh does the work).
#
# Environment:
#   KSTEST_KERNEL_DEB=/path/linux-image-....deb   use this package instead of apt-get download
#   KSTEST_FORCE=1                                 rebuild even if the cache is fresh
set -euo pipefail

die() { echo "build-test-installer: $*" >&2; exit 1; }
script=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(dirname "$(dirname "$script")")
arch=amd64
mode=installer
while [[ $# -gt 1 ]]; do
  case $1 in
    --arch) arch=$2; shift 2 ;;
    --loaders) mode=loaders; shift ;;
    --dracut) mode=dracut; shift ;;
    *) die "unknown option $1" ;;
  esac
done
[[ $# -eq 1 ]] || die "usage: $0 [--arch amd64|arm64 | --loaders | --dracut] OUTDIR"
[[ $arch == amd64 || $arch == arm64 ]] || die "--arch: amd64 or arm64, not $arch"
if [[ $mode == dracut ]]; then exec bash "$repo/scripts/build-dracut-image.sh" "$1"; fi

mkdir -p "$1"
out=$(readlink -f "$1")

# fetch_deb PKG DIR: apt-get download PKG into DIR and print the .deb's path.
fetch_deb() {
  # -o APT::Sandbox::User=root: the _apt user may not be able to write into DIR.
  (cd "$2" && apt-get download -q -o APT::Sandbox::User=root "$1" >&2) ||
    die "apt-get download $1 failed (for :arm64, run scripts/deps.sh: it adds the architecture)"
  ls "$2"/"${1%%:*}"_*.deb
}

if [[ $mode == loaders ]]; then
  exec 9>"$out/.lock"
  flock 9
  if [[ ${KSTEST_FORCE:-0} != 1 && -s $out/shimx64.efi && -s $out/grubx64.efi && -s $out/grubaa64.efi && ! $script -nt $out/grubaa64.efi ]]; then
    echo "build-test-installer: loaders up to date: $out" >&2
    exit 0
  fi
  work=$(mktemp -d "$out/.work.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  for pkg in shim-signed grub-efi-amd64-signed grub-efi-arm64-bin:arm64; do
    dpkg-deb -x "$(fetch_deb "$pkg" "$work")" "$work/x"
  done
  cp "$work/x/usr/lib/shim/shimx64.efi.signed" "$work/shimx64.efi"
  cp "$work/x/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$work/grubx64.efi"
  cp "$work/x/usr/lib/grub/arm64-efi/monolithic/grubnetaa64.efi" "$work/grubaa64.efi"
  for f in shimx64.efi grubx64.efi grubaa64.efi; do mv -f "$work/$f" "$out/$f"; done
  echo "build-test-installer: loaders in $out" >&2
  exit 0
fi

src="$repo/testdata/installer"
[[ -f $src/init ]] || die "missing $src/init"

# NIC drivers wanted, in the order REAL-CLIENTS.md loads them; dependencies are added in front.
# arm64's virt machine has virtio only.
want_modules=(e1000 virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci failover net_failover virtio_net)
[[ $arch == arm64 ]] && want_modules=("${want_modules[@]:1}")

fresh() {
  [[ ${KSTEST_FORCE:-0} != 1 && -s $out/vmlinuz && -s $out/initrd.img ]] || return 1
  local newer
  newer=$(find "$script" "$src" -newer "$out/initrd.img" -print -quit)
  [[ -z $newer ]] && [[ ! $script -nt $out/vmlinuz ]]
}

exec 9>"$out/.lock"
flock 9
if fresh; then
  echo "build-test-installer: up to date: $out" >&2
  exit 0
fi

for tool in busybox:busybox-static cpio:cpio gzip:gzip dpkg-deb:dpkg; do
  cmd=${tool%%:*}
  if ! command -v "$cmd" >/dev/null; then
    [[ $(id -u) == 0 ]] || die "$cmd missing and not root; apt-get install ${tool#*:}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${tool#*:}" >/dev/null
  fi
done
busybox=$(command -v busybox)
host_busybox=$busybox
# Debian's /bin/busybox comes from busybox-static only when that package is installed; a dynamic
# busybox would not run in an initrd without its libc.
if LC_ALL=C file "$busybox" 2>/dev/null | grep -q 'dynamically linked'; then
  die "$busybox is dynamically linked; install busybox-static"
fi

work=$(mktemp -d "$out/.work.XXXXXX")
trap 'rm -rf "$work"' EXIT

if [[ $arch == arm64 ]]; then
  # The host cannot run an arm64 busybox, so its applet list comes from the host's busybox of
  # the same Debian version.
  dpkg-deb -x "$(fetch_deb busybox-static:arm64 "$work")" "$work/bb"
  busybox="$work/bb/bin/busybox"
fi

# --- kernel and modules -----------------------------------------------------------------------
if [[ -n ${KSTEST_KERNEL_DEB:-} ]]; then
  deb=$(readlink -f "$KSTEST_KERNEL_DEB")
  pkg=$(dpkg-deb -f "$deb" Package)
else
  # linux-image-<arch> is a metapackage; the kernel lives in its versioned dependency.
  pkg=$(apt-cache depends "linux-image-$arch:$arch" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ {print $2; exit}')
  pkg=${pkg%%:*}
  [[ -n $pkg ]] || die "cannot resolve linux-image-$arch to a versioned package (apt-get update?)"
  deb=
fi
kdir="$out/kernel/$pkg"
if [[ ! -s $kdir/vmlinuz || ! -s $kdir/modules.order ]]; then
  if [[ -z $deb ]]; then
    echo "build-test-installer: downloading $pkg:$arch" >&2
    deb=$(fetch_deb "$pkg:$arch" "$work")
  fi
  echo "build-test-installer: extracting $(basename "$deb")" >&2
  dpkg-deb -x "$deb" "$work/deb"
  kver=$(ls "$work/deb/lib/modules" | head -n1)
  [[ -n $kver ]] || die "no lib/modules in $deb"
  rm -rf "$work/kernel" && mkdir -p "$work/kernel/modules"
  if [[ $arch == arm64 ]]; then
    # Debian's arm64 vmlinuz is a plain 32 MB Image; GRUB inflates a gzipped one itself, and
    # arm64 GRUB's lock-step TFTP under TCG is slow enough that the size decides the boot time.
    gzip -9nc "$work/deb/boot/vmlinuz-$kver" >"$work/kernel/vmlinuz"
  else
    cp "$work/deb/boot/vmlinuz-$kver" "$work/kernel/vmlinuz"
  fi

  # The package ships no modules.dep (depmod runs at install time), so read each module's own
  # "depends=" from its .modinfo section instead.
  modfile() { find "$work/deb/lib/modules/$kver" -name "$1.ko" -o -name "$1.ko.xz" -o -name "$1.ko.zst" -o -name "$1.ko.gz" | head -n1; }
  declare -A seen=()
  order=()
  add_module() {
    local name=$1 f deps d
    [[ -n ${seen[$name]:-} ]] && return 0
    seen[$name]=1
    f=$(modfile "$name")
    if [[ -z $f ]]; then
      # Built into this kernel (arm64 has virtio built in): nothing to load.
      grep -qE "/${name//_/[_-]}\.ko\$" "$work/deb/lib/modules/$kver/modules.builtin" 2>/dev/null && return 0
      die "module $name not in $pkg"
    fi
    case $f in
      # busybox insmod cannot read compressed modules: store them plain.
      *.xz) xz -dc "$f" >"$work/kernel/modules/$name.ko" ;;
      *.zst) zstd -qdc "$f" >"$work/kernel/modules/$name.ko" ;;
      *.gz) gzip -dc "$f" >"$work/kernel/modules/$name.ko" ;;
      *) cp "$f" "$work/kernel/modules/$name.ko" ;;
    esac
    deps=$(tr '\0' '\n' <"$work/kernel/modules/$name.ko" | sed -n 's/^depends=//p' | head -n1)
    for d in ${deps//,/ }; do add_module "${d//-/_}"; done
    order+=("$name")
  }
  for m in "${want_modules[@]}"; do add_module "$m"; done
  printf '%s\n' "${order[@]}" >"$work/kernel/modules.order"
  printf '%s\n' "$pkg $(dpkg-deb -f "$deb" Version) $kver" >"$work/kernel/version"
  rm -rf "$kdir" && mkdir -p "$(dirname "$kdir")" && mv "$work/kernel" "$kdir"
  rm -rf "$work/deb"
fi

# --- root filesystem ------------------------------------------------------------------------
root="$work/root"
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,run,tmp,etc/kstest,lib/modules,var/log,mnt/sysimage}
cp "$busybox" "$root/bin/busybox"
while read -r applet; do
  [[ -e $root/$applet || -L $root/$applet ]] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -s /bin/busybox "$root/$applet"
done < <("$host_busybox" --list-full | sort)
cp "$kdir"/modules/*.ko "$root/lib/modules/"
cp "$kdir/modules.order" "$root/etc/kstest/modules"
# The project's files (init, curl shim, dracut hook emulation) win over busybox symlinks.
(cd "$src" && find . -mindepth 1 ! -name README.md ! -name '*_test*' -print0 | sort -z |
  while IFS= read -r -d '' p; do
    if [[ -d $p ]]; then mkdir -p "$root/$p"; else rm -f "$root/$p"; cp -P "$p" "$root/$p"; fi
  done)
chmod 0755 "$root/init"
# Real dracut lives in /usr/lib/dracut; EL7 also reaches it through /lib -> usr/lib.
ln -sfn ../usr/lib/dracut "$root/lib/dracut"
chmod 1777 "$root/tmp"

find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . -mindepth 1 -print0 | LC_ALL=C sort -z |
  cpio --null --quiet -o -H newc --reproducible -R 0:0) | gzip -9 -n >"$work/initrd.img"

{
  echo "kernel: $(cat "$kdir/version")"
  echo "busybox: $(dpkg-query -W -f '${Package} ${Version}' busybox-static 2>/dev/null || "$host_busybox" | head -n1) for $arch"
  echo "modules: $(tr '\n' ' ' <"$kdir/modules.order")"
  echo "initrd-bytes: $(stat -c %s "$work/initrd.img")"
  echo "initrd-sha256: $(sha256sum "$work/initrd.img" | cut -d' ' -f1)"
} >"$work/manifest.txt"

# Rename into place last, kernel first, so a reader never sees a new initrd beside an old kernel
# and the freshness check (initrd newer than sources) only passes after a complete build.
cp "$kdir/vmlinuz" "$work/vmlinuz"
mv -f "$work/vmlinuz" "$out/vmlinuz"
mv -f "$work/manifest.txt" "$out/manifest.txt"
mv -f "$work/initrd.img" "$out/initrd.img"
touch "$out/vmlinuz" "$out/initrd.img"
echo "build-test-installer: built $out/initrd.img ($(stat -c %s "$out/initrd.img") bytes), kernel $pkg" >&2
