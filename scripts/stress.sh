#!/usr/bin/env bash
# make stress: the long variants of the hardening and crash-safety tests.
#
# `make test` runs the same tests bounded to well under two minutes each;
# here KICKSTAND_STRESS=1 scales them up (internal/hardening):
#   TestDHCPStarvation      200,000 random MACs instead of 20,000
#   TestTFTPFlood           5,000 unacknowledged read requests instead of 500
#   TestSlowloris           2,000 trickling connections instead of 200
#   TestKillDuringDHCPLoad  20 random kill -9 over 90 s of DORAs instead of 3 over 12 s
#   TestKillDistroImport    40 random kills of a 2,000-file import instead of 6 of 400
#   TestKillInventoryReload 30 random kills of a 5,000-host reload instead of 6 of 1,500
# and internal/dhcp4's TestKill9KeepsAckedLeases (perfdhcp, one kill, every
# ACK on the wire checked against the store) runs STRESS_REPEAT times.
#
# Everything runs on loopback or in network namespaces the tests create,
# with the documentation prefixes; it needs root, like make test.
# STRESS_RUN=REGEX limits the hardening tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
export KICKSTAND_STRESS=1
export KICKSTAND_REQUIRE_PEERS=${KICKSTAND_REQUIRE_PEERS:-1}
GO=${GO:-go}
run=${STRESS_RUN:-.}
repeat=${STRESS_REPEAT:-5}

status=0
mkdir -p build
log=build/stress.log
echo "stress: internal/hardening (KICKSTAND_STRESS=1, -run '$run'); full output in $log" >&2
"$GO" test -count=1 -timeout 120m -v -run "$run" ./internal/hardening/ >"$log" 2>&1 || status=1
# The results and what each test measured.
grep -E '^(--- |ok |FAIL)|^ {4}\S+_test\.go:[0-9]+:' "$log" || true

if [[ $run == . ]]; then
  echo "stress: internal/dhcp4 TestKill9KeepsAckedLeases x$repeat" >&2
  "$GO" test -count="$repeat" -timeout 60m -run '^TestKill9KeepsAckedLeases$' ./internal/dhcp4/ || status=1
fi
exit $status
