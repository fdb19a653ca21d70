#!/usr/bin/env bash
# TFTP throughput, side by side in one run: N concurrent atftp clients
# (default 32) each fetch one SIZE_MIB file (default 64 MiB) over a veth
# between two network namespaces this script creates and removes
# (192.0.2.1 server, 192.0.2.2 clients). It prints aggregate MB/s per server
# and the ratio to tftpd-hpa.
#
# Rows: kickstand lock-step (blksize 1468), kickstand windowsize 16,
# tftpd-hpa, dnsmasq and pin/tftp v3 (the library kickstand's server was
# written instead of). Each row also reports the server's CPU time per MB
# and the clients' (GNU time around each atftp). tftpd-hpa, dnsmasq and pin/tftp do not implement
# windowsize, so only kickstand gets a windowed row. BENCH_TFTP_512=1 adds
# rows with default 512-byte blocks. BENCH_REPEAT=n runs each row n times and
# reports the median; BENCH_TFTP_ROWS=regex picks rows. Needs root; every
# client is bounded by a timeout.
set -euo pipefail

CLIENTS=${BENCH_TFTP_CLIENTS:-32}
SIZE_MIB=${BENCH_TFTP_SIZE_MIB:-64}
REPEAT=${BENCH_REPEAT:-1}
CLIENT_TIMEOUT=${BENCH_TFTP_TIMEOUT:-300}

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [[ $(id -u) != 0 ]]; then echo "bench/tftp: needs root (network namespaces)" >&2; exit 1; fi
if [[ ! -x /usr/bin/time ]]; then DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends time >/dev/null; fi
for tool in ip atftp in.tftpd dnsmasq go; do
  command -v "$tool" >/dev/null || { echo "bench/tftp: $tool missing (scripts/deps.sh installs it)" >&2; exit 1; }
done

id=$$
srv=ksbt${id}s cli=ksbt${id}c vs=ksbt${id}a vc=ksbt${id}b
work=$(mktemp -d /tmp/kstftp-bench.XXXXXX)
server_pid=

cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  ip netns del "$srv" 2>/dev/null || true
  ip netns del "$cli" 2>/dev/null || true
  cg_remove
  rm -rf "$work"
}
trap cleanup EXIT

# The servers drop privileges (tftpd-hpa to nobody, dnsmasq to its user), so
# the tree must be world-readable.
chmod 755 "$work"
mkdir -m 755 "$work/root" "$work/bin"
head -c $((SIZE_MIB << 20)) /dev/urandom >"$work/root/big.bin"
chmod 644 "$work/root/big.bin"
want_sum=$(sha256sum "$work/root/big.bin" | cut -d' ' -f1)

echo "building servers..." >&2
(cd "$repo" && go build -o "$work/bin/ksftpd" ./bench/tftp/ksftpd)
have_pin=1
(cd "$here/pinftpd" && go build -o "$work/bin/pinftpd" .) || { have_pin=0; echo "bench/tftp: pin/tftp did not build; skipping its row" >&2; }

ip netns add "$srv"
ip netns add "$cli"
ip -n "$srv" link set lo up
ip -n "$cli" link set lo up
ip link add "$vs" netns "$srv" type veth peer name "$vc" netns "$cli"
ip -n "$srv" addr add 192.0.2.1/24 dev "$vs"
ip -n "$cli" addr add 192.0.2.2/24 dev "$vc"
ip -n "$srv" link set "$vs" up
ip -n "$cli" link set "$vc" up

start_server() { # name
  case $1 in
    kickstand) ip netns exec "$srv" "$work/bin/ksftpd" -root "$work/root" -listen 192.0.2.1:69 >/dev/null 2>"$work/server.log" & ;;
    tftpd-hpa) ip netns exec "$srv" in.tftpd -L -s "$work/root" -a 192.0.2.1:69 >/dev/null 2>"$work/server.log" & ;;
    dnsmasq) ip netns exec "$srv" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --enable-tftp \
               --tftp-root="$work/root" --listen-address=192.0.2.1 --bind-interfaces --pid-file= \
               --tftp-max=$((CLIENTS * 2)) >/dev/null 2>"$work/server.log" & ;;
    pin/tftp) ip netns exec "$srv" "$work/bin/pinftpd" -root "$work/root" -listen 192.0.2.1:69 >/dev/null 2>"$work/server.log" & ;;
  esac
  server_pid=$!
  cg_join
  sleep 0.5
  if ! kill -0 "$server_pid" 2>/dev/null; then echo "bench/tftp: $1 did not start:" >&2; cat "$work/server.log" >&2; exit 1; fi
}

stop_server() {
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# fetch_check: one client fetches the file and the bytes are compared, so a
# server that is fast because it is wrong is caught.
fetch_check() { # name opts...
  local name=$1; shift
  local out=$work/check.bin
  rm -f "$out"
  ip netns exec "$cli" timeout "$CLIENT_TIMEOUT" atftp "$@" -g -r big.bin -l "$out" 192.0.2.1 69 >/dev/null 2>&1 || true
  if [[ ! -f $out || $(sha256sum "$out" | cut -d' ' -f1) != "$want_sum" ]]; then
    echo "bench/tftp: $name returned wrong bytes" >&2
    exit 1
  fi
  rm -f "$out"
}

# The server runs in a CPU-accounting cgroup of its own, so that the
# children tftpd-hpa forks per transfer (reaped without accounting) count.
cg=
cg_join() {
  cg=
  for base in /sys/fs/cgroup/cpuacct /sys/fs/cgroup; do
    [[ -d $base ]] || continue
    mkdir -p "$base/kstftp$id" 2>/dev/null || continue
    if echo "$server_pid" >"$base/kstftp$id/cgroup.procs" 2>/dev/null; then cg=$base/kstftp$id; return; fi
  done
  echo "bench/tftp: no CPU-accounting cgroup; server CPU excludes forked children" >&2
}
cg_remove() { for base in /sys/fs/cgroup/cpuacct /sys/fs/cgroup; do rmdir "$base/kstftp$id" 2>/dev/null || true; done; }
# servercpu: CPU seconds used by the server so far.
servercpu() {
  if [[ -f $cg/cpuacct.usage ]]; then awk '{ printf "%.3f", $1 / 1e9 }' "$cg/cpuacct.usage"
  elif [[ -f $cg/cpu.stat ]]; then awk '/^usage_usec/ { printf "%.3f", $2 / 1e6 }' "$cg/cpu.stat"
  else awk -v t="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15 + $16 + $17) / t }' "/proc/$server_pid/stat"; fi
}

# run_clients prints the aggregate MB/s of CLIENTS concurrent fetches, the
# server's CPU milliseconds per MB sent and the clients' per MB received.
run_clients() { # opts...
  local pids=() start end failed=0 cpu0 cpu1
  cpu0=$(servercpu)
  start=$(date +%s.%N)
  for ((i = 0; i < CLIENTS; i++)); do
    ip netns exec "$cli" timeout "$CLIENT_TIMEOUT" /usr/bin/time -f '%U %S' -o "$work/time.$i" \
      atftp "$@" -g -r big.bin -l /dev/null 192.0.2.1 69 >"$work/client.$i.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
  end=$(date +%s.%N)
  sleep 0.3 # the server's children exit
  cpu1=$(servercpu)
  if ((failed)); then echo "bench/tftp: $failed of $CLIENTS clients failed" >&2; return 1; fi
  cat "$work"/time.* | awk -v s="$start" -v e="$end" -v n="$CLIENTS" -v m="$SIZE_MIB" -v c0="$cpu0" -v c1="$cpu1" '
    { cli += $1 + $2 }
    END { mb = n * m * 1048576 / 1e6; printf "%.1f %.2f %.2f\n", mb / (e - s), (c1 - c0) * 1000 / mb, cli * 1000 / mb }'
}

median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

rows=(
  "kickstand|kickstand|blksize 1468, lock-step|--option|blksize 1468"
  "kickstand|kickstand|blksize 1468, windowsize 16|--option|blksize 1468|--option|windowsize 16"
  "tftpd-hpa|tftpd-hpa|blksize 1468|--option|blksize 1468"
  "dnsmasq|dnsmasq|blksize 1468|--option|blksize 1468"
)
((have_pin)) && rows+=("pin/tftp|pin/tftp v3.1.0|blksize 1468|--option|blksize 1468")
if [[ ${BENCH_TFTP_512:-0} == 1 ]]; then
  rows+=(
    "kickstand|kickstand|blksize 512, lock-step"
    "kickstand|kickstand|blksize 512, windowsize 16|--option|windowsize 16"
    "tftpd-hpa|tftpd-hpa|blksize 512"
    "dnsmasq|dnsmasq|blksize 512"
  )
fi

if [[ -n ${BENCH_TFTP_ROWS:-} ]]; then # e.g. BENCH_TFTP_ROWS='kickstand|tftpd' to run a subset
  keep=()
  for row in "${rows[@]}"; do [[ $row =~ ${BENCH_TFTP_ROWS} ]] && keep+=("$row"); done
  rows=("${keep[@]}")
fi

declare -A result
base_1468= base_512=
for row in "${rows[@]}"; do
  IFS='|' read -r -a f <<<"$row"
  server=${f[0]} label=${f[1]} mode=${f[2]}
  opts=("${f[@]:3}")
  echo "running $label ($mode): $CLIENTS x $SIZE_MIB MiB x $REPEAT..." >&2
  start_server "$server"
  fetch_check "$label" "${opts[@]}"
  samples=() scpu=() ccpu=()
  for ((r = 0; r < REPEAT; r++)); do
    read -r m sc cc < <(run_clients "${opts[@]}")
    samples+=("$m") scpu+=("$sc") ccpu+=("$cc")
  done
  stop_server
  mbs=$(printf '%s\n' "${samples[@]}" | median)
  result["$label|$mode"]=$mbs
  result["$label|$mode|scpu"]=$(printf '%s\n' "${scpu[@]}" | median)
  result["$label|$mode|ccpu"]=$(printf '%s\n' "${ccpu[@]}" | median)
  [[ $label == tftpd-hpa && $mode == "blksize 1468" ]] && base_1468=$mbs
  [[ $label == tftpd-hpa && $mode == "blksize 512" ]] && base_512=$mbs
done

printf '\nTFTP: %d concurrent atftp clients x %d MiB over a veth (median of %d)\n' "$CLIENTS" "$SIZE_MIB" "$REPEAT"
printf '%-18s %-30s %10s %14s %16s %16s\n' server mode MB/s "vs tftpd-hpa" "server CPU ms/MB" "client CPU ms/MB"
for row in "${rows[@]}"; do
  IFS='|' read -r -a f <<<"$row"
  label=${f[1]} mode=${f[2]}
  mbs=${result["$label|$mode"]}
  base=$base_1468
  [[ $mode == *512* ]] && base=$base_512
  ratio=$(awk -v a="$mbs" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
  printf '%-18s %-30s %10s %14s %16s %16s\n' "$label" "$mode" "$mbs" "$ratio" "${result["$label|$mode|scpu"]}" "${result["$label|$mode|ccpu"]}"
done
cat <<EOF

Targets (issue 18): lock-step at blksize 1468 >= 1.5x tftpd-hpa; windowsize 16 >= 4x tftpd-hpa.
CPU is per MB delivered: the server's (with its reaped children) and all
clients' together. Server and clients share the same CPUs, so when the
clients' CPU per MB is most of the total, they are what limits throughput.
EOF
