#!/usr/bin/env bash
# make demo: boot a real QEMU VM (SeaBIOS + iPXE) through kickstand.
#
# It builds the test installer (a Debian kernel and a busybox initrd that
# fetches its kickstart like dracut and runs %post like Anaconda), creates a
# network namespace with the bridge ksbr0 (192.0.2.1/24), starts kickstand
# there on examples/netns-lab.yaml, PXE-boots host bios1, prints the result
# and the host's timeline, and removes everything again.
#
# Without root it falls back to serving examples/lab.yaml on loopback.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin/kickstand}
ns=${KICKSTAND_NS_PREFIX:-}ksdemo

if [[ $(id -u) != 0 ]]; then
  echo "demo: not root, so no namespace or VM; serving examples/lab.yaml on loopback instead" >&2
  exec bash scripts/demo-loopback.sh
fi

cleanup() {
  if [[ -n ${pid:-} ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null || true
  ip netns del "$ns" 2>/dev/null || true
}
trap cleanup EXIT
cleanup

echo "== building the test installer (kernel from Debian's linux-image-amd64, busybox initrd)"
bash scripts/build-test-installer.sh build/test-installer >/dev/null
rm -rf build/netns-lab-data

echo "== network namespace $ns with bridge ksbr0 192.0.2.1/24 and tap0"
ip netns add "$ns"
ip -n "$ns" link set lo up
ip -n "$ns" link add ksbr0 type bridge stp_state 0 forward_delay 0
ip -n "$ns" addr add 192.0.2.1/24 dev ksbr0
ip -n "$ns" link set ksbr0 up
ip -n "$ns" tuntap add dev tap0 mode tap
ip -n "$ns" link set tap0 master ksbr0
ip -n "$ns" link set tap0 up

echo "== kickstand serve --config examples/netns-lab.yaml (DHCP, TFTP, HTTP on ksbr0)"
ip netns exec "$ns" "$bin" serve --config examples/netns-lab.yaml 2> build/demo-serve.log &
pid=$!
for _ in $(seq 100); do grep -q "http listening" build/demo-serve.log && break; sleep 0.1; done

echo "== booting VM bios1 (52:54:00:00:00:10) from the network; about a minute under TCG"
start=$(date +%s)
set +e
ip netns exec "$ns" timeout 240 qemu-system-x86_64 -machine pc,accel=tcg -m 512 -smp 1 \
  -nographic -no-reboot -monitor none -serial stdio \
  -netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
  -device e1000,netdev=n0,mac=52:54:00:00:00:10,bootindex=1 -boot n \
  </dev/null | tr -d '\r' | tee build/demo-serial.log | grep --line-buffered -E 'KSTEST: (ks-fetch|post-ran|post rc|done)|Linux version'
set -e
echo "== VM finished after $(($(date +%s) - start)) s"
sleep 0.5 # let the last timeline events be written

echo
echo "== timeline of bios1 (kickstand host timeline --config examples/netns-lab.yaml bios1)"
# Read once, then searched: `timeline | grep -q` under pipefail fails
# whenever grep stops reading before the timeline is written.
timeline=$("$bin" host timeline --config examples/netns-lab.yaml bios1)
echo "$timeline"
echo
if grep -q 'KSTEST: ks-fetch ok' build/demo-serial.log && grep -q 'KSTEST: done' build/demo-serial.log \
   && grep -q callback.built <<<"$timeline"; then
  echo "RESULT: bios1 booted from the network, fetched its kickstart under its build token,"
  echo "        ran %post and reported built. Its next network boot goes to the local disk:"
  "$bin" render ipxe --config examples/netns-lab.yaml bios1 | tail -2
else
  echo "RESULT: the install did not complete; see build/demo-serial.log and build/demo-serve.log"
  exit 1
fi
