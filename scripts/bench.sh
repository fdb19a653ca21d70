#!/usr/bin/env bash
# make bench: kickstand side by side with the standard tools, in one run,
# reporting ratios (these machines are noisy; only same-run ratios mean
# anything). Each benchmark installs its peers from Debian when missing and
# runs in network namespaces it creates and removes.
set -euo pipefail
cd "$(dirname "$0")/.."
ran=0
for b in bench/dhcp bench/dhcp6 bench/tftp bench/http bench/inventory bench/storm; do
  [[ -x $b/run.sh || -f $b/run.sh ]] || continue
  echo
  echo "==== $b ($(date -u +%H:%M:%S))"
  bash "$b/run.sh"
  ran=$((ran + 1))
done
echo
echo "$ran benchmark(s) ran"
