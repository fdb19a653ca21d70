#!/usr/bin/env bash
# Boot storm: N simulated machines (default 1,000) power on at once and boot
# from kickstand -- relayed DHCP, the loader over TFTP (blksize 1468), the
# iPXE script, kernel and initrd over HTTP, the kickstart through its token
# URL, the built callback -- first against one kickstand on SQLite, then
# against two kickstand servers sharing one PostgreSQL (scripts/postgres.sh),
# the machines split between them. Reports successes, failures by step,
# p50/p95/p99/max per step and end to end, and the aggregate throughput
# against the link's capacity, measured first with a bulk TCP transfer.
#
# Network: one client namespace; per server a namespace and a veth,
# 198.18.0.(4k+1)/30 on the server, .(4k+2) on the client (the relay address
# and the source of TFTP/HTTP). Hosts and pool are in 198.18.0.0/15, the
# benchmarking range, inside the namespaces only; all of it is removed on
# exit. Bounded: each machine has a 10-minute budget, each run 20 minutes.
#
# Environment: N (machines, default 1000), KERNEL_SIZE and INITRD_SIZE
# (bytes, default 10 MiB and 50 MiB), MODES (default "sqlite postgres"),
# KICKSTAND (a prebuilt kickstand binary instead of building one).
set -euo pipefail

N=${N:-1000}
KERNEL_SIZE=${KERNEL_SIZE:-$((10 << 20))}
INITRD_SIZE=${INITRD_SIZE:-$((50 << 20))}
read -r -a MODES <<<"${MODES:-sqlite postgres}"

root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) != 0 ]]; then echo "bench/storm: needs root for network namespaces" >&2; exit 1; fi
tmp=$(mktemp -d /tmp/ks-bench-storm.XXXXXX)
CLI=kst-cli
SRVS=(kst-s0 kst-s1)
pgdir=

killns() {
  local ns=$1 pids
  [[ -e /run/netns/$ns ]] || return 0
  for sig in TERM KILL; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z $pids ]] && break
    kill -s "$sig" $pids 2>/dev/null || true
    for _ in $(seq 30); do [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break; sleep 0.1; done
  done
}
delns() { killns "$1"; ip netns del "$1" 2>/dev/null || true; }
cleanup() {
  for ns in "$CLI" "${SRVS[@]}"; do delns "$ns"; done
  [[ -n $pgdir ]] && bash "$root/scripts/postgres.sh" destroy "$pgdir" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT
for ns in "$CLI" "${SRVS[@]}"; do delns "$ns"; done

if [[ -n ${KICKSTAND:-} ]]; then
  bin=$KICKSTAND
else
  echo "bench/storm: building kickstand" >&2
  (cd "$root" && go build -o "$tmp/kickstand" ./cmd/kickstand)
  bin=$tmp/kickstand
fi
if ! "$bin" bench storm --help >/dev/null 2>&1; then
  echo "bench/storm: this kickstand has no 'bench storm' command (cmd/kickstand must register newBenchCmd)" >&2
  exit 1
fi

ip netns add "$CLI"; ip -n "$CLI" link set lo up
for k in 0 1; do
  ns=${SRVS[$k]}
  ip netns add "$ns"; ip -n "$ns" link set lo up
  ip -n "$ns" link add "kst$k" type veth peer name "ksc$k" netns "$CLI"
  ip -n "$ns" addr add "198.18.0.$((4 * k + 1))/30" dev "kst$k"
  ip -n "$CLI" addr add "198.18.0.$((4 * k + 2))/30" dev "ksc$k"
  ip -n "$ns" link set "kst$k" up; ip -n "$CLI" link set "ksc$k" up
  # Machines speak from their own (reserved) addresses, which the storm puts
  # on the client namespace's loopback: route them back over the link.
  ip -n "$ns" route replace 198.18.0.0/15 via "198.18.0.$((4 * k + 2))"
done

echo "bench/storm: making the distro tree (kernel $KERNEL_SIZE bytes, initrd $INITRD_SIZE bytes)" >&2
"$bin" bench inventory --n 1 --tree "$tmp/tree" --kernel-size "$KERNEL_SIZE" --initrd-size "$INITRD_SIZE" >/dev/null

# run MODE SERVERS [DSN]: fresh servers, the link measurement, the storm.
run() {
  local mode=$1 servers=$2 dsn=${3:-} targets=() k
  for ((k = 0; k < servers; k++)); do
    local d=$tmp/$mode/srv$k
    mkdir -p "$d/templates"
    "$bin" bench inventory --n "$N" --address "198.18.0.$((4 * k + 1))" --interface "kst$k" \
      --data-dir "$d/data" --templates "$d/templates" --tree "$tmp/tree" ${dsn:+--store-url "$dsn"} >"$d/kickstand.yaml"
    ip netns exec "${SRVS[$k]}" "$bin" serve -c "$d/kickstand.yaml" >"$d/log" 2>&1 &
    targets+=(--target "198.18.0.$((4 * k + 1))@198.18.0.$((4 * k + 2))")
  done
  ip netns exec "${SRVS[0]}" "$bin" bench sink --listen 198.18.0.1:5001 --for 20m >/dev/null 2>&1 &
  echo >&2
  echo "bench/storm: $mode, $servers server(s), $N machines" >&2
  local rc=0
  ip netns exec "$CLI" timeout 20m "$bin" bench storm --n "$N" "${targets[@]}" --sink 198.18.0.1:5001 \
    | tee "$tmp/$mode.txt" || rc=$?
  for ((k = 0; k < servers; k++)); do killns "${SRVS[$k]}"; done
  if ((rc != 0)); then
    for ((k = 0; k < servers; k++)); do echo "--- server $k log (tail)"; tail -n 20 "$tmp/$mode/srv$k/log"; done >&2
  fi
  results+=("$mode ($servers server(s)): $(head -1 "$tmp/$mode.txt")")
  return 0
}

results=()
for mode in "${MODES[@]}"; do
  case $mode in
    sqlite) run sqlite 1 ;;
    postgres)
      pgdir=$(mktemp -d /tmp/kst-pg.XXXXXX) # outside $tmp: the postgres user must reach it
      dsn=$(bash "$root/scripts/postgres.sh" start "$pgdir" | tail -n1)
      run postgres 2 "$dsn"
      bash "$root/scripts/postgres.sh" destroy "$pgdir" >/dev/null 2>&1 || true
      pgdir= ;;
    *) echo "bench/storm: unknown mode $mode" >&2; exit 1 ;;
  esac
done

echo
echo "Boot storm summary ($(nproc) CPUs)"
printf '  %s\n' "${results[@]}"
