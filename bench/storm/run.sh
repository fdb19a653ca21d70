#!/usr/bin/env bash
# Boot storm: N simulated machines (default 1,000) power on at once and boot
# from kickstand -- relayed DHCP, the loader over TFTP (blksize 1468), the
# iPXE script, kernel and initrd over HTTP, the kickstart through its token
# URL, the built callback -- first against one kickstand on SQLite, then
# against two kickstand servers sharing one PostgreSQL (scripts/postgres.sh),
# the machines split between them. Reports successes, failures by step,
# p50/p95/p99/max per step and end to end, and the aggregate throughput
# against the link's capacity, measured first with a bulk TCP transfer, with
# the ratio of the p99 time to built over the time the measured link needs
# for the bytes moved (issue 18's target: within 2x).
#
# Modes (MODES, default "sqlite postgres failover storm10k"):
#   sqlite    N machines, one server on SQLite.
#   postgres  N machines split round-robin over two servers on one PostgreSQL.
#   failover  N machines, two servers on one PostgreSQL, every machine's DHCP
#             relayed to both (first OFFER wins); run twice: without a kill,
#             then with the server that has the most installs in flight
#             SIGKILLed once N/3 machines are built. Machines whose install
#             breaks reboot and start over (at most 5 times). Each installer
#             runs FO_INSTALL (default 5s) between kickstart and callback.
#   storm10k  BIG machines (default 10,000), on SQLite and on two servers on
#             one PostgreSQL, with BIG_KERNEL + BIG_INITRD images (default
#             2 MiB + 8 MiB: 10,000 x 60 MB would be 630 GB on one host).
#
# Network: one client namespace; per server a namespace and a veth,
# 198.18.0.(4k+1)/30 on the server, .(4k+2) on the client (the relay address
# and the source of TFTP/HTTP). Hosts and pool are in 198.18.0.0/15, the
# benchmarking range, inside the namespaces only; all of it is removed on
# exit. Bounded: each machine has a 10-minute budget, each run 20 minutes.
#
# Environment: N (machines, default 1000), KERNEL_SIZE and INITRD_SIZE
# (bytes, default 10 MiB and 50 MiB), MODES, BIG, BIG_KERNEL, BIG_INITRD,
# FO_INSTALL, KICKSTAND (a prebuilt kickstand binary instead of building
# one), NS_PREFIX (namespace names; default from KICKSTAND_NS_PREFIX).
set -euo pipefail

N=${N:-1000}
KERNEL_SIZE=${KERNEL_SIZE:-$((10 << 20))}
INITRD_SIZE=${INITRD_SIZE:-$((50 << 20))}
BIG=${BIG:-10000}
BIG_KERNEL=${BIG_KERNEL:-$((2 << 20))}
BIG_INITRD=${BIG_INITRD:-$((8 << 20))}
FO_INSTALL=${FO_INSTALL:-5s}
read -r -a MODES <<<"${MODES:-sqlite postgres failover storm10k}"
P=${NS_PREFIX:-${KICKSTAND_NS_PREFIX:-}}

root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) != 0 ]]; then echo "bench/storm: needs root for network namespaces" >&2; exit 1; fi
tmp=$(mktemp -d /tmp/ks-bench-storm.XXXXXX)
CLI=${P}kst-cli
SRVS=("${P}kst-s0" "${P}kst-s1")
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

# tree SIZE_KERNEL SIZE_INITRD: the distro tree of those image sizes.
tree() {
  local t=$tmp/tree-$1-$2
  [[ -d $t ]] || "$bin" bench inventory --n 1 --tree "$t" --kernel-size "$1" --initrd-size "$2" >/dev/null
  echo "$t"
}

# run LABEL N TREE SERVERS DSN [storm flags...]: fresh servers, the link
# measurement, the storm; its report in $tmp/LABEL.txt.
run() {
  local label=$1 n=$2 tree=$3 servers=$4 dsn=$5 targets=() pids=() k
  shift 5
  for ((k = 0; k < servers; k++)); do
    local d=$tmp/$label/srv$k
    mkdir -p "$d/templates"
    "$bin" bench inventory --n "$n" --address "198.18.0.$((4 * k + 1))" --interface "kst$k" \
      --data-dir "$d/data" --templates "$d/templates" --tree "$tree" ${dsn:+--store-url "$dsn"} >"$d/kickstand.yaml"
    # ip netns exec execs kickstand in place: $! is the server's PID.
    ip netns exec "${SRVS[$k]}" "$bin" serve -c "$d/kickstand.yaml" >"$d/log" 2>&1 &
    pids+=($!)
    targets+=(--target "198.18.0.$((4 * k + 1))@198.18.0.$((4 * k + 2))")
  done
  local kill=()
  if [[ ${1:-} == --kill ]]; then kill=(--kill "$(IFS=,; echo "${pids[*]}")"); shift; fi
  ip netns exec "${SRVS[0]}" "$bin" bench sink --listen 198.18.0.1:5001 --for 20m >/dev/null 2>&1 &
  echo >&2
  echo "bench/storm: $label: $servers server(s), $n machines $*" >&2
  local rc=0
  ip netns exec "$CLI" timeout 20m "$bin" bench storm --n "$n" "${targets[@]}" --sink 198.18.0.1:5001 --wait 5m "${kill[@]}" "$@" \
    | tee "$tmp/$label.txt" || rc=$?
  for ((k = 0; k < servers; k++)); do killns "${SRVS[$k]}"; done
  if ((rc != 0)); then
    for ((k = 0; k < servers; k++)); do echo "--- server $k log (tail)"; tail -n 20 "$tmp/$label/srv$k/log"; done >&2
  fi
  local f=$tmp/$label.txt
  results+=("$label ($servers server(s)): $(head -1 "$f")")
  results+=("    $(grep -m1 '^total' "$f" | awk '{print "time to built p50 " $3 ", p99 " $5}'); $(grep -m1 '^p99 time to built' "$f" | sed 's/.*bytes moved: //')")
  results+=("    $(grep -m1 '^DHCP:' "$f" | sed 's/^DHCP: //'); $(grep -m1 '^reboots:' "$f")")
  if grep -q '^server .* killed' "$f"; then results+=("    $(grep -m1 '^server .* killed' "$f")"); fi
  return 0
}

# postgres: a fresh cluster in $pgdir, its DSN in $dsn.
pgstart() {
  pgdir=$(mktemp -d /tmp/kst-pg.XXXXXX) # outside $tmp: the postgres user must reach it
  dsn=$(bash "$root/scripts/postgres.sh" start "$pgdir" | tail -n1)
}
pgstop() {
  bash "$root/scripts/postgres.sh" destroy "$pgdir" >/dev/null 2>&1 || true
  pgdir=
}

echo "bench/storm: making the distro trees" >&2
std=$(tree "$KERNEL_SIZE" "$INITRD_SIZE")
results=()
for mode in "${MODES[@]}"; do
  case $mode in
    sqlite) run sqlite "$N" "$std" 1 "" ;;
    postgres) pgstart; run postgres "$N" "$std" 2 "$dsn"; pgstop ;;
    failover)
      fo=(--relay-all --reboots 5 --install-time "$FO_INSTALL")
      pgstart; run failover-reference "$N" "$std" 2 "$dsn" "${fo[@]}"; pgstop
      pgstart; run failover-kill "$N" "$std" 2 "$dsn" --kill --kill-after $((N / 3)) "${fo[@]}"; pgstop ;;
    storm10k)
      big=$(tree "$BIG_KERNEL" "$BIG_INITRD")
      run storm10k-sqlite "$BIG" "$big" 1 ""
      pgstart; run storm10k-postgres "$BIG" "$big" 2 "$dsn"; pgstop ;;
    *) echo "bench/storm: unknown mode $mode" >&2; exit 1 ;;
  esac
done

echo
echo "Boot storm summary ($(nproc) CPUs)"
printf '  %s\n' "${results[@]}"
