#!/usr/bin/env bash
# HTTP, side by side in one run, over one veth between two network
# namespaces this script creates and removes (198.18.0.1 server, .2 client):
#
#  1. large files: wrk -t2 -c32 fetching a 64 MiB file from kickstand and
#     from nginx (Debian nginx-light, sendfile on, access log off);
#  2. rendered kickstarts: kickstand's /ks/<token> (rendered once per host
#     and inputs, then served from memory after the address check) against
#     nginx serving a static 2 KB file, both wrk -t2 -c64; and the same
#     static 2 KB file from kickstand's server.root against nginx's;
#  3. an inventory of HOSTS (default 100,000) hosts: `kickstand serve`
#     start-up until it answers (empty store, then existing store), and how
#     long a host change takes to show in the next boot script, after
#     SIGHUP and through the file watcher.
#
# Bounded: each wrk run lasts DURATION seconds (default 10); every wait
# polls at most 120 s. Environment: DURATION, HOSTS, KICKSTAND (a prebuilt
# binary instead of building one).
set -euo pipefail

DURATION=${DURATION:-10}
HOSTS=${HOSTS:-100000}
root=$(cd "$(dirname "$0")/../.." && pwd)
if [[ $(id -u) != 0 ]]; then echo "bench/http: needs root for network namespaces" >&2; exit 1; fi

need=()
command -v wrk >/dev/null || need+=(wrk)
command -v nginx >/dev/null || need+=(nginx-light)
if ((${#need[@]})); then
  echo "bench/http: installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

tmp=$(mktemp -d /tmp/ks-bench-http.XXXXXX)
chmod 755 "$tmp" # nginx workers run as www-data
SRV=ksh-srv CLI=ksh-cli
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
cleanup() { delns "$CLI"; delns "$SRV"; rm -rf "$tmp"; }
trap cleanup EXIT
delns "$CLI"; delns "$SRV"
ip netns add "$SRV"; ip netns add "$CLI"
ip -n "$SRV" link set lo up; ip -n "$CLI" link set lo up
ip -n "$SRV" link add ksh0 type veth peer name ksh1 netns "$CLI"
ip -n "$SRV" addr add 198.18.0.1/30 dev ksh0; ip -n "$CLI" addr add 198.18.0.2/30 dev ksh1
ip -n "$SRV" link set ksh0 up; ip -n "$CLI" link set ksh1 up
# Host 42 of the inventory benchmark asks from its own address (storm
# hosts have 198.18.4.0 + i): kickstand identifies machines by address.
ip -n "$CLI" addr add 198.18.4.42/32 dev lo
ip -n "$SRV" route add 198.18.0.0/15 via 198.18.0.2

if [[ -n ${KICKSTAND:-} ]]; then
  bin=$KICKSTAND
else
  echo "bench/http: building kickstand" >&2
  (cd "$root" && go build -o "$tmp/kickstand" ./cmd/kickstand)
  bin=$tmp/kickstand
fi

# The files both servers serve: the same bytes, from the page cache.
mkdir -p "$tmp/www" "$tmp/tree" "$tmp/templates" "$tmp/data"
head -c $((64 << 20)) /dev/urandom >"$tmp/www/big.bin"
head -c 2048 /dev/urandom | base64 -w 76 | head -c 2048 >"$tmp/www/small.txt"
echo kernel >"$tmp/tree/vmlinuz"; echo initrd >"$tmp/tree/initrd.img"

cat >"$tmp/kickstand.yaml" <<EOF
server:
  http: "198.18.0.1:8080"
  address_v4: 198.18.0.1
  data_dir: $tmp/data
  templates: $tmp/templates
  root: $tmp/www
menu:
  unknown: ignore
distros:
  - name: el9
    release: rhel9
    arch: x86_64
    tree: $tmp/tree
    kernel: vmlinuz
    initrd: [initrd.img]
profiles:
  - name: el9
    distro: el9
    vars: {ssh_keys: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIO4XXYCSjZiPdeOxZHim36SW6neeiKaofIhcbKteSflM test@example.com"}
    kernel_args: console=ttyS0 inst.text
hosts:
  - name: bench1.example.com
    macs: ["02:5b:00:ff:00:01"]
    # wrk's address: kickstarts are served only to the host's own address.
    ipv4: 198.18.0.2/30
    gateway4: 198.18.0.1
    nameservers: [198.51.100.53]
    profile: el9
    netboot: install
EOF

cat >"$tmp/nginx.conf" <<EOF
worker_processes $(nproc);
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 10000000;
  default_type application/octet-stream;
  server { listen 198.18.0.1:8081; root $tmp/www; }
}
EOF

# waitok URL: poll from the client namespace until URL answers 200.
waitok() {
  for _ in $(seq 600); do
    ip netns exec "$CLI" curl -fsS -o /dev/null --max-time 2 "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "bench/http: $1 never answered" >&2; return 1
}

ip netns exec "$SRV" "$bin" serve -c "$tmp/kickstand.yaml" >"$tmp/kickstand.log" 2>&1 &
ip netns exec "$SRV" nginx -c "$tmp/nginx.conf" -g 'daemon off;' >"$tmp/nginx.out" 2>&1 &
waitok http://198.18.0.1:8080/healthz
waitok http://198.18.0.1:8081/small.txt
ks=$(ip netns exec "$CLI" curl -fsS 'http://198.18.0.1:8080/boot.ipxe' | grep -o 'inst.ks=[^ ]*' | cut -d= -f2-)
[[ -n $ks ]] || { echo "bench/http: no kickstart URL in the boot script" >&2; exit 1; }
ip netns exec "$CLI" curl -fsS -o /dev/null "$ks"

# wrk_run CONNS URL: prints "requests/s bytes/s" (wrk's own figures).
wrk_run() {
  local out
  out=$(ip netns exec "$CLI" timeout $((DURATION + 30)) wrk -t2 -c"$1" -d"${DURATION}s" --latency "$2" 2>&1 || true)
  echo "$out" >>"$tmp/wrk.log"
  awk '
    /Requests\/sec:/ { r = $2 }
    /Transfer\/sec:/ { v = $2; u = substr(v, length(v) - 1); n = substr(v, 1, length(v) - 2) + 0
      if (u == "GB") n *= 1024 * 1024 * 1024; else if (u == "MB") n *= 1024 * 1024; else if (u == "KB") n *= 1024; else n = v + 0
      b = n }
    /Non-2xx/ { bad = 1 }
    END { if (bad) r = -1; printf "%.0f %.0f\n", r, b }' <<<"$out"
}

echo "bench/http: large files, 32 connections" >&2
read -r _ ks_big < <(wrk_run 32 http://198.18.0.1:8080/big.bin)
read -r _ ng_big < <(wrk_run 32 http://198.18.0.1:8081/big.bin)
echo "bench/http: rendered kickstarts vs a static 2 KB file, 64 connections" >&2
read -r ks_rps _ < <(wrk_run 64 "$ks")
read -r ng_rps _ < <(wrk_run 64 http://198.18.0.1:8081/small.txt)
echo "bench/http: the static 2 KB file from kickstand and from nginx, 64 connections" >&2
read -r kss_rps _ < <(wrk_run 64 http://198.18.0.1:8080/small.txt)
read -r ngs_rps _ < <(wrk_run 64 http://198.18.0.1:8081/small.txt)
killns "$SRV"

# Inventory of HOSTS hosts.
echo "bench/http: inventory of $HOSTS hosts" >&2
inv=$tmp/inv
mkdir -p "$inv/templates"
"$bin" bench inventory --n "$HOSTS" --address 198.18.0.1 --interface ksh0 --data-dir "$inv/data" \
  --templates "$inv/templates" --tree "$tmp/tree" >"$inv/kickstand.yaml"
start_inv() {
  local t0 t1
  t0=$(date +%s.%N)
  ip netns exec "$SRV" "$bin" serve -c "$inv/kickstand.yaml" >>"$inv/log" 2>&1 &
  waitok http://198.18.0.1:8080/healthz
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
first=$(start_inv)
killns "$SRV"
second=$(start_inv)
# A change of host 42 (MAC 02:5b:00:00:00:2a) must show in its next boot
# script: "# kickstand: action=local" or "action=install".
script42() { ip netns exec "$CLI" curl -fsS --max-time 5 --interface 198.18.4.42 'http://198.18.0.1:8080/boot.ipxe?arch=0' 2>/dev/null || true; }
# visible STATE T0: seconds from T0 until the script shows STATE (bounded: 60 s).
visible() {
  local t1
  for _ in $(seq 1200); do
    if script42 | grep -q "action=$1 "; then break; fi
    sleep 0.05
  done
  t1=$(date +%s.%N)
  awk -v a="$2" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}
script42 | grep -q "action=install " || { echo "bench/http: host 42 is not installing before the change" >&2; exit 1; }
# Live change (CLI, API): committed to the store, seen by the next request.
ip netns exec "$SRV" "$bin" -c "$inv/kickstand.yaml" host set-state storm-00042 local >/dev/null
live=$(visible local "$(date +%s.%N)")
# File change: edit the YAML, then SIGHUP (a reload of the whole file).
ip netns exec "$SRV" "$bin" -c "$inv/kickstand.yaml" host set-state storm-00042 install >/dev/null
visible install "$(date +%s.%N)" >/dev/null
script42 | grep -q "action=install " || { echo "bench/http: host 42 did not go back to install" >&2; exit 1; }
sed -i "/name: storm-00042\$/,/netboot:/ s/netboot: install/netboot: local/" "$inv/kickstand.yaml"
t0=$(date +%s.%N)
kill -HUP $(ip netns pids "$SRV") 2>/dev/null || true
hup=$(visible local "$t0")
killns "$SRV"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "n/a" }'; }
mb() { awk -v a="$1" 'BEGIN { printf "%.0f MB/s", a / 1e6 }'; }
echo
echo "HTTP ($(nproc) CPUs, one veth, wrk -t2, ${DURATION}s per run; $(nginx -v 2>&1 | sed 's/.*: //') with sendfile)"
printf '%-44s %14s %14s %8s %8s\n' measure kickstand nginx ratio target
printf '%-44s %14s %14s %8s %8s\n' "64 MiB file, 32 connections" "$(mb "$ks_big")" "$(mb "$ng_big")" "$(ratio "$ks_big" "$ng_big")" ">=0.9x"
printf '%-44s %14s %14s %8s %8s\n' "kickstart (/ks/token) vs static 2 KB, c64" "$ks_rps req/s" "$ng_rps req/s" "$(ratio "$ks_rps" "$ng_rps")" ">=1x"
printf '%-44s %14s %14s %8s %8s\n' "static 2 KB file (server.root), c64" "$kss_rps req/s" "$ngs_rps req/s" "$(ratio "$kss_rps" "$ngs_rps")" ">=0.9x"
echo
echo "Inventory of $HOSTS hosts"
printf '%-44s %8s s   (target < 5 s)\n' "start-up, empty store (until /healthz)" "$first"
printf '%-44s %8s s   (target < 5 s)\n' "start-up, existing store" "$second"
printf '%-44s %8s s   (target < 1 s)\n' "live change (host set-state) to next request" "$live"
printf '%-44s %8s s   (target < 1 s)\n' "file edit + SIGHUP to next request" "$hup"
