#!/usr/bin/env bash
# make demo: start kickstand on the example lab inventory, on loopback, show
# what it serves, and clean up. Needs only the built binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${BIN:-bin/kickstand}
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$work"' EXIT

port=18080
cp -r examples/templates "$work/"
sed -e "s/http: \":8080\"/http: \"127.0.0.1:$port\"/" -e 's/address_v4: 192.0.2.1/address_v4: 127.0.0.1/' \
    -e "s#data_dir: /var/lib/kickstand#data_dir: $work/data#" examples/lab.yaml > "$work/lab.yaml"
# Small stand-in trees so the server's file checks pass.
for d in rhel8 centos7.2 centos6 centos7; do
  mkdir -p "$work/trees/$d/images/pxeboot"
  head -c 1048576 /dev/urandom > "$work/trees/$d/images/pxeboot/vmlinuz"
  echo initrd > "$work/trees/$d/images/pxeboot/initrd.img"
done

"$bin" serve --config "$work/lab.yaml" 2> "$work/serve.log" &
pid=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done

base=http://127.0.0.1:$port
show() { echo; echo "\$ $*"; "$@"; }
echo "kickstand is serving examples/lab.yaml on $base (log: $work/serve.log)"
show curl -s "$base/boot.ipxe?mac=52:54:00:00:02:08"
show curl -s "$base/pxelinux.cfg/01-52-54-00-00-02-06"
show curl -s "$base/grub.cfg-01-52-54-00-00-31-00"
ks=$(curl -s "$base/boot.ipxe?mac=52:54:00:00:02:08" | grep -o 'inst.ks=[^ ]*' | cut -d= -f2-)
show curl -s "$ks"
show curl -s -o /dev/null -w '%{http_code} (a kickstart without its token)\n' "$base/ks/not-a-token"
show "$bin" host set-state --config "$work/lab.yaml" el8.example.com local
show curl -s "$base/boot.ipxe?mac=52:54:00:00:02:08"
show "$bin" render --explain --config "$work/lab.yaml" newbox.wann.net
echo
echo "demo done; stopping kickstand"
