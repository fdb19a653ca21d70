#!/usr/bin/env bash
# Inventory at scale: HOSTS hosts (default 100,000) as one 12 MB file and as
# FILES files of a hosts directory (default 100 of 1,000), each served by
# `kickstand serve` in a network namespace this script creates and removes
# (198.18.0.1 on its loopback; requests from inside it). For each form:
#
#  - first start on an empty store, until /healthz answers;
#  - restart on the store the first start left;
#  - one host's netboot edited in the file, until its next boot script
#    shows it: through SIGHUP for the one file (every file read again), and
#    through the inotify watch alone for the hosts directory;
#  - peak RSS of the server (VmHWM), and its CPU time for the start-ups.
#
# Bounded: every wait polls at most 120 s. Needs root (namespaces).
# Environment: HOSTS, FILES, KICKSTAND (a prebuilt binary), NS (namespace
# name; default from KICKSTAND_NS_PREFIX).
set -euo pipefail

HOSTS=${HOSTS:-100000}
FILES=${FILES:-100}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) != 0 ]]; then echo "bench/inventory: needs root for a network namespace" >&2; exit 1; fi
NS=${NS:-${KICKSTAND_NS_PREFIX:-ks}inv}
tmp=$(mktemp -d /tmp/ks-bench-inv.XXXXXX)
pid=

killns() {
  local pids
  [[ -e /run/netns/$NS ]] || return 0
  for sig in TERM KILL; do
    pids=$(ip netns pids "$NS" 2>/dev/null || true)
    [[ -z $pids ]] && break
    kill -s "$sig" $pids 2>/dev/null || true
    for _ in $(seq 50); do [[ -z $(ip netns pids "$NS" 2>/dev/null) ]] && break; sleep 0.1; done
  done
}
cleanup() { killns; ip netns del "$NS" 2>/dev/null || true; [[ -n ${KEEP:-} ]] || rm -rf "$tmp"; }
trap cleanup EXIT
killns; ip netns del "$NS" 2>/dev/null || true
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" addr add 198.18.0.1/32 dev lo
# Host 42 asks from its own address (storm hosts have 198.18.4.0 + i):
# kickstand identifies machines by address, not by what they claim.
ip -n "$NS" addr add 198.18.4.42/32 dev lo

if [[ -n ${KICKSTAND:-} ]]; then
  bin=$KICKSTAND
else
  echo "bench/inventory: building kickstand" >&2
  (cd "$root" && go build -o "$tmp/kickstand" ./cmd/kickstand)
  bin=$tmp/kickstand
fi

now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
get() { ip netns exec "$NS" curl -fsS --max-time 5 "$@" 2>/dev/null || true; }
waitok() {
  for _ in $(seq 1200); do
    [[ $(get -o /dev/null -w '%{http_code}' http://198.18.0.1:8080/healthz) == 200 ]] && return 0
    kill -0 "$pid" 2>/dev/null || { echo "bench/inventory: kickstand exited:" >&2; tail -5 "$1/log" >&2; return 1; }
    sleep 0.1
  done
  echo "bench/inventory: no /healthz after 120 s" >&2; return 1
}
# cpu PID: the process's user+system CPU seconds.
cpu() { awk -v t="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / t }' "/proc/$1/stat"; }
hwm() { awk '/VmHWM/ { printf "%.0f MB", $2 / 1024 }' "/proc/$1/status"; }

# start DIR: serve DIR/kickstand.yaml; sets took and took_cpu.
start() {
  local t0
  t0=$(now)
  ip netns exec "$NS" "$bin" serve -c "$1/kickstand.yaml" >>"$1/log" 2>&1 &
  pid=$!
  waitok "$1"
  took=$(since "$t0") took_cpu=$(cpu "$pid")
}
stop() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; pid=; }

# Host 42 is in install state; its boot script says "# kickstand:
# action=install" until an edit makes it local.
script42() { get --interface 198.18.4.42 'http://198.18.0.1:8080/boot.ipxe?arch=0'; }
is42() { [[ $(script42) == *"action=$1 "* ]]; }
visible() { # T0: seconds from T0 until host 42 boots locally (bounded: 120 s)
  for _ in $(seq 2400); do
    is42 local && break
    sleep 0.05
  done
  is42 local || { echo "bench/inventory: the edit never showed" >&2; return 1; }
  since "$1"
}
edit42() { sed -i "/name: storm-00042\$/,/netboot:/ s/netboot: install/netboot: local/" "$1"; }

declare -A R
# run NAME DIR EDITFILE HUP
run() {
  local name=$1 dir=$2 file=$3 hup=$4 t0
  echo "bench/inventory: $name" >&2
  start "$dir"
  R[$name,first]=$took R[$name,firstcpu]=$took_cpu
  stop
  start "$dir"
  R[$name,restart]=$took R[$name,restartcpu]=$took_cpu
  is42 install || { echo "bench/inventory: host 42 is not installing" >&2; exit 1; }
  sleep 1 # the server is idle again after its start
  c0=$(cpu "$pid")
  edit42 "$file"
  t0=$(now)
  ((hup)) && kill -HUP "$pid"
  R[$name,edit]=$(visible "$t0")
  R[$name,editcpu]=$(awk -v a="$c0" -v b="$(cpu "$pid")" 'BEGIN { printf "%.2f", b - a }')
  R[$name,rss]=$(hwm "$pid")
  stop
}

one=$tmp/one dir=$tmp/dir
mkdir -p "$one/templates" "$dir/templates"
(cd "$one" && "$bin" bench inventory --n "$HOSTS" --tree "$tmp/tree" >kickstand.yaml)
(cd "$dir" && "$bin" bench inventory --n "$HOSTS" --tree "$tmp/tree" --hosts-dir hosts.d --per-file $(((HOSTS + FILES - 1) / FILES)) >kickstand.yaml)
size=$(du -m "$one/kickstand.yaml" | cut -f1)
run one "$one" "$one/kickstand.yaml" 1
run dir "$dir" "$dir/hosts.d/hosts-00000.yaml" 0

echo
echo "Inventory of $HOSTS hosts ($(nproc) CPUs): one file of $size MB, and $FILES files in hosts.d"
printf '%-48s %10s %10s %10s\n' measure "one file" "hosts.d" target
printf '%-48s %8s s %8s s %10s\n' "first start, empty store (until /healthz)" "${R[one,first]}" "${R[dir,first]}" "< 5 s"
printf '%-48s %8s s %8s s %10s\n' "  server CPU (user+system)" "${R[one,firstcpu]}" "${R[dir,firstcpu]}" ""
printf '%-48s %8s s %8s s %10s\n' "restart, existing store" "${R[one,restart]}" "${R[dir,restart]}" "< 2 s"
printf '%-48s %8s s %8s s %10s\n' "  server CPU (user+system)" "${R[one,restartcpu]}" "${R[dir,restartcpu]}" ""
printf '%-48s %8s s %10s %10s\n' "one host edited + SIGHUP, to its next request" "${R[one,edit]}" "" "< 3 s"
printf '%-48s %10s %8s s %10s\n' "one host edited in hosts.d (inotify), to next" "" "${R[dir,edit]}" "< 1 s"
printf '%-48s %8s s %8s s %10s\n' "  server CPU for the edit" "${R[one,editcpu]}" "${R[dir,editcpu]}" ""
printf '%-48s %10s %10s\n' "peak RSS" "${R[one,rss]}" "${R[dir,rss]}"
echo "load average while measuring: $(cut -d' ' -f1-3 /proc/loadavg) (other jobs share the CPUs: compare CPU times)"
