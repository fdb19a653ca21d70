#!/usr/bin/env bash
# DHCP exchanges per second, side by side in one run, for DHCPv4 (DORA:
# Discover, Offer, Request, Ack) and DHCPv6 (SARR: Solicit, Advertise,
# Request, Reply): the real `kickstand serve` (its config file, a fresh
# SQLite store, every ACK or Reply fsync'd before it leaves, rate limits
# off) against Kea (memfile, which never fsyncs) and optionally dnsmasq
# (DHCPv4, lease file), each driven by Kea's perfdhcp over one veth pair
# between two network namespaces this script creates and removes. DHCPv4
# uses 198.18.0.0/15 (the benchmarking range), DHCPv6 2001:db8::/64, both
# inside the namespaces only.
#
# For each family and server the offered rate is stepped up; the result is
# the highest completed exchange rate whose drops stay under 2.5 %. Every
# server starts from an empty lease database at every step. Then each
# server runs once more at one common rate (the lower of kickstand's and
# Kea's best) with tcpdump on the client's side, and the REQUEST -> ACK /
# Reply latency (p50, p99) is read from the capture (bench/dhcp/latency),
# and the server's CPU time (user + system) per exchange of that run from
# /proc: on a machine other jobs load, the highest rates say more about
# the load than the servers, the CPU an exchange costs much less so.
# Bounded: at most ${#RATES[@]} steps x 2 tries x DURATION seconds per
# server and family, plus the latency steps.
#
# Environment: FAMILIES (default "4 6"), DURATION (seconds per step,
# default 5), RATES4 and RATES6 (offered rates), SERVERS4 (default
# "kickstand kea"; add dnsmasq), SERVERS6 (default "kickstand kea"),
# KICKSTAND (a prebuilt binary instead of building one), PROFILE=1 (also
# write kickstand's CPU profile of its best step to $PROFILE_DIR, default
# /tmp/ks-bench-dhcp-profiles).
set -euo pipefail

read -r -a FAMILIES <<<"${FAMILIES:-4 6}"
DURATION=${DURATION:-5}
RATES4=${RATES4:-"500 1000 2000 3000 4000 5000 6000 8000 10000 12000 14000 16000"}
RATES6=${RATES6:-"500 1000 2000 3000 4000 5000 6000 8000 10000 12000"}
SERVERS4=${SERVERS4:-"kickstand kea"}
SERVERS6=${SERVERS6:-"kickstand kea"}
PROFILE=${PROFILE:-0}
PROFILE_DIR=${PROFILE_DIR:-/tmp/ks-bench-dhcp-profiles}
MAXDROP=2.5

root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) != 0 ]]; then echo "bench/dhcp: needs root for network namespaces" >&2; exit 1; fi

need=()
command -v perfdhcp >/dev/null || need+=(kea-admin)
command -v kea-dhcp4 >/dev/null || need+=(kea-dhcp4-server)
command -v kea-dhcp6 >/dev/null || need+=(kea-dhcp6-server)
command -v tcpdump >/dev/null || need+=(tcpdump)
if [[ " $SERVERS4 " == *" dnsmasq "* ]] && ! command -v dnsmasq >/dev/null; then need+=(dnsmasq-base); fi
if ((${#need[@]})); then
  echo "bench/dhcp: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d /tmp/ks-bench-dhcp.XXXXXX)
SRV=ksbd-srv CLI=ksbd-cli SIF=ksbd0 CIF=ksbd1

killns() {
  local ns=$1 pids
  [[ -e /run/netns/$ns ]] || return 0
  for sig in TERM KILL; do
    pids=$(ip netns pids "$ns" 2>/dev/null || true)
    [[ -z $pids ]] && break
    kill -s "$sig" $pids 2>/dev/null || true
    for _ in $(seq 50); do [[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break; sleep 0.1; done
  done
}
delns() { killns "$CLI"; killns "$SRV"; ip netns del "$CLI" 2>/dev/null || true; ip netns del "$SRV" 2>/dev/null || true; }
cleanup() { delns; rm -rf "$tmp"; }
trap cleanup EXIT
delns

ip netns add "$SRV"; ip netns add "$CLI"
for ns in "$SRV" "$CLI"; do
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
done
ip -n "$SRV" link add "$SIF" type veth peer name "$CIF" netns "$CLI"
ip -n "$SRV" addr add 198.18.0.1/15 dev "$SIF"
ip -n "$SRV" addr add 2001:db8::1/64 dev "$SIF" nodad
# perfdhcp -4 acts as a relay from its address (giaddr 198.18.0.2) and
# sends unicast, which every server here accepts (Kea's UDP sockets do not
# see broadcasts); perfdhcp -6 multicasts from its link-local address.
ip -n "$CLI" addr add 198.18.0.2/15 dev "$CIF"
ip -n "$SRV" link set "$SIF" up; ip -n "$CLI" link set "$CIF" up
for _ in $(seq 100); do
  ip -n "$CLI" -6 addr show dev "$CIF" scope link | grep -v tentative | grep -q inet6 && break
  sleep 0.1
done

if [[ -n ${KICKSTAND:-} ]]; then
  cp "$KICKSTAND" "$tmp/kickstand"
else
  echo "bench/dhcp: building kickstand" >&2
  (cd "$root" && go build -o "$tmp/kickstand" ./cmd/kickstand)
fi
(cd "$root" && go build -o "$tmp/latency" ./bench/dhcp/latency)
mkdir -p "$tmp/templates"

# kickstand_conf FAMILY: serve with only that family's DHCP server.
kickstand_conf() {
  cat <<EOF
server:
  http: "127.0.0.1:8080"
  data_dir: $tmp/state
  templates: $tmp/templates
menu:
  unknown: ignore
tftp:
  enabled: false
EOF
  if [[ $1 == 4 ]]; then cat <<EOF
dhcp:
  enabled: true
  mode: server
  interfaces: [$SIF]
  rate_limit: {off: true}
  subnets:
    - subnet: 198.18.0.0/15
      pool: 198.18.1.0-198.19.255.254
      lease_time: 1h
EOF
  else cat <<EOF
dhcp6:
  enabled: true
  interfaces: [$SIF]
  rate_limit: {off: true}
  subnets:
    - prefix: 2001:db8::/64
      pool: 2001:db8::1:0-2001:db8::ffff:ffff
      preferred_lifetime: 50m
      valid_lifetime: 1h
EOF
  fi
}

kea_conf() {
  if [[ $1 == 4 ]]; then cat <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": ["$SIF"], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "name": "$tmp/state/kea-leases4.csv", "lfc-interval": 0 },
    "valid-lifetime": 3600,
    "subnet4": [ { "id": 1, "subnet": "198.18.0.0/15", "pools": [ { "pool": "198.18.1.0 - 198.19.255.254" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$tmp/state/kea.log" } ] } ]
} }
EOF
  else cat <<EOF
{ "Dhcp6": {
    "interfaces-config": { "interfaces": ["$SIF"] },
    "data-directory": "$tmp/state",
    "server-id": { "type": "LL", "persist": false },
    "lease-database": { "type": "memfile", "persist": true, "name": "$tmp/state/kea-leases6.csv", "lfc-interval": 0 },
    "preferred-lifetime": 3000, "valid-lifetime": 3600,
    "subnet6": [ { "id": 1, "subnet": "2001:db8::/64", "interface": "$SIF",
                   "pools": [ { "pool": "2001:db8::1:0 - 2001:db8::ffff:ffff" } ] } ],
    "loggers": [ { "name": "kea-dhcp6", "severity": "WARN", "output_options": [ { "output": "$tmp/state/kea.log" } ] } ]
} }
EOF
  fi
}

# start FAMILY NAME [PROFILE]: a fresh server in $SRV, waiting until it
# listens on the family's server port.
start() {
  local fam=$1 srv=$2 port=67
  [[ $fam == 6 ]] && port=547
  rm -rf "$tmp/state"; mkdir -p "$tmp/state"
  case $srv in
    kickstand)
      kickstand_conf "$fam" >"$tmp/kickstand.yaml"
      local prof=()
      [[ -n ${3:-} ]] && prof=(--cpu-profile "$3")
      ip netns exec "$SRV" "$tmp/kickstand" serve -c "$tmp/kickstand.yaml" "${prof[@]}" >"$tmp/state/log" 2>&1 & ;;
    dnsmasq)
      ip netns exec "$SRV" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface="$SIF" --bind-interfaces \
        --dhcp-range=198.18.1.0,198.19.255.254,255.254.0.0,1h --dhcp-lease-max=200000 --dhcp-authoritative --no-ping \
        --dhcp-leasefile="$tmp/state/dnsmasq.leases" --pid-file="$tmp/state/pid" --log-facility="$tmp/state/log" \
        >"$tmp/state/out" 2>&1 & ;;
    kea)
      kea_conf "$fam" >"$tmp/state/kea.json"
      KEA_PIDFILE_DIR="$tmp/state" KEA_LOCKFILE_DIR="$tmp/state" \
        ip netns exec "$SRV" "kea-dhcp$fam" -c "$tmp/state/kea.json" >"$tmp/state/out" 2>&1 & ;;
  esac
  for _ in $(seq 150); do
    if ip netns exec "$SRV" ss -Hlun "sport = :$port" | grep -q .; then
      # Multicast membership and neighbour state settle; kickstand reads
      # its (empty) lease table on the first packet.
      sleep 0.5
      return 0
    fi
    sleep 0.1
  done
  echo "bench/dhcp: $srv (v$fam) did not start:" >&2; cat "$tmp/state/"{out,log} 2>/dev/null >&2 || true
  return 1
}
stop() { killns "$SRV"; }

# cpu_ms: milliseconds of CPU (user + system) the processes in $SRV have
# used so far. CPU per exchange, unlike the highest rate, hardly depends on
# what else the machine is running.
cpu_ms() {
  local t=0 p v hz
  hz=$(getconf CLK_TCK)
  for p in $(ip netns pids "$SRV" 2>/dev/null); do
    v=$(sed 's/^.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}') || v=0
    t=$((t + ${v:-0}))
  done
  echo $((t * 1000 / hz))
}

# measure FAMILY RATE [PCAP]: prints "completed-exchanges/s drop%", with a
# capture of the run written to PCAP when given.
measure() {
  local fam=$1 rate=$2 pcap=${3:-} out sent got first second td=
  if [[ $fam == 4 ]]; then
    first=DISCOVER-OFFER second=REQUEST-ACK
  else
    first=SOLICIT-ADVERTISE second=REQUEST-REPLY
  fi
  if [[ -n $pcap ]]; then
    ip netns exec "$CLI" tcpdump -i "$CIF" -n -U -s 400 -w "$pcap" "udp and (port 67 or port 68 or port 546 or port 547)" >"$tmp/tcpdump.log" 2>&1 &
    td=$!
    for _ in $(seq 50); do grep -q "listening on" "$tmp/tcpdump.log" 2>/dev/null && break; sleep 0.1; done
  fi
  local target=()
  [[ $fam == 4 ]] && target=(198.18.0.1)
  out=$(ip netns exec "$CLI" timeout $((DURATION + 30)) perfdhcp "-$fam" -l "$CIF" -r "$rate" -R 10000000 -p "$DURATION" -W 1000000 "${target[@]}" 2>&1 || true)
  if [[ -n $td ]]; then sleep 0.3; kill -INT "$td" 2>/dev/null || true; wait "$td" 2>/dev/null || true; fi
  sent=$(awk -v s="$first" '$0 ~ "Statistics for: "s {f=1} f&&/sent packets/{print $3; exit}' <<<"$out")
  got=$(awk -v s="$second" '$0 ~ "Statistics for: "s {f=1} f&&/received packets/{print $3; exit}' <<<"$out")
  if [[ -z $sent || -z $got || $sent == 0 ]]; then echo "0 100"; return; fi
  awk -v s="$sent" -v a="$got" -v d="$DURATION" 'BEGIN { printf "%.0f %.2f\n", a / d, 100 * (s - a) / s }'
}

declare -A best bestrate first lat cpu
for fam in "${FAMILIES[@]}"; do
  servers=$SERVERS4 rates=$RATES4 unit=DORA
  [[ $fam == 6 ]] && servers=$SERVERS6 rates=$RATES6 unit=SARR
  read -r -a SV <<<"$servers"
  read -r -a RT <<<"$rates"
  for srv in "${SV[@]}"; do
    k="$fam/$srv"
    best[$k]=0; bestrate[$k]=0; first[$k]=
    for rate in "${RT[@]}"; do
      ok=0
      # A failed step is tried once more: one noisy second on a shared
      # machine should not end a server's run.
      for attempt in 1 2; do
        start "$fam" "$srv"
        read -r got drop < <(measure "$fam" "$rate")
        stop
        printf 'bench/dhcp: v%s %-9s offered %5d/s: %5d %s/s, %6.2f%% dropped\n' "$fam" "$srv" "$rate" "$got" "$unit" "$drop" >&2
        [[ -n ${first[$k]} ]] || first[$k]="$got $unit/s at ${rate}/s with ${drop}% drops"
        if awk -v d="$drop" -v m="$MAXDROP" 'BEGIN { exit !(d < m) }'; then
          ok=1; best[$k]=$got; bestrate[$k]=$rate
          break
        fi
      done
      ((ok)) || break
    done
  done
  # Latency, every server at one rate both kickstand and Kea sustain.
  common=${bestrate[$fam/kickstand]:-0}
  [[ ${bestrate[$fam/kea]:-0} != 0 && ${bestrate[$fam/kea]} -lt $common ]] && common=${bestrate[$fam/kea]}
  [[ $common == 0 ]] && common=${RT[0]}
  lat[$fam/rate]=$common
  for srv in "${SV[@]}"; do
    prof=
    if [[ $PROFILE == 1 && $srv == kickstand ]]; then mkdir -p "$PROFILE_DIR"; prof="$PROFILE_DIR/kickstand-v$fam.pprof"; fi
    start "$fam" "$srv" "$prof"
    c0=$(cpu_ms)
    read -r got _ < <(measure "$fam" "$common" "$tmp/lat.pcap")
    c1=$(cpu_ms)
    stop
    cpu[$fam/$srv]=$(awk -v c=$((c1 - c0)) -v n="$got" -v d="$DURATION" 'BEGIN { if (n > 0) printf "%.0f", 1000 * c / (n * d); else print "-" }')
    lat[$fam/$srv]=$("$tmp/latency" "$tmp/lat.pcap" 2>/dev/null || echo "0 - - -")
    rm -f "$tmp/lat.pcap"
  done
done

echo
echo "DHCP exchanges/s: perfdhcp, ${DURATION}s steps, the highest rate with < ${MAXDROP}% drops; $(nproc) CPUs, one veth"
echo "latency: REQUEST -> ACK / Reply on the client's side, every server at the same offered rate;"
echo "CPU: the server's user + system CPU per completed exchange at that rate (µs), and Kea's over it"
printf '%-6s %-44s %9s %9s %8s %26s %8s %7s\n' family server "offered/s" "done/s" "vs Kea" "p50 / p99 ms (at rate/s)" "CPU µs" "Kea/it"
for fam in "${FAMILIES[@]}"; do
  servers=$SERVERS4
  [[ $fam == 6 ]] && servers=$SERVERS6
  read -r -a SV <<<"$servers"
  for srv in "${SV[@]}"; do
    k="$fam/$srv"
    case $srv in
      kickstand) label="kickstand serve (SQLite, fsync'd group commit)" ;;
      dnsmasq) label="dnsmasq $(dnsmasq --version | awk 'NR==1{print $3}') (lease file)" ;;
      kea) label="Kea $(kea-dhcp$fam -V 2>/dev/null | head -1) (memfile, no fsync)" ;;
    esac
    ratio="n/a"
    if [[ ${best[$fam/kea]:-0} != 0 ]]; then
      ratio=$(awk -v a="${best[$k]}" -v b="${best[$fam/kea]}" 'BEGIN { printf "%.2fx", a / b }')
    fi
    read -r n p50 p99 _ <<<"${lat[$k]}"
    cratio=$(awk -v a="${cpu[$k]:-}" -v b="${cpu[$fam/kea]:-}" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2fx", b / a; else print "n/a" }')
    printf 'v%-5s %-44s %9s %9s %8s %26s %8s %7s\n' "$fam" "$label" "${bestrate[$k]}" "${best[$k]}" "$ratio" "$p50 / $p99 (${lat[$fam/rate]}, n=$n)" "${cpu[$k]:--}" "$cratio"
    if [[ ${best[$k]} == 0 ]]; then
      echo "       ($srv never stayed under ${MAXDROP}% drops; first step: ${first[$k]})"
    fi
  done
done
