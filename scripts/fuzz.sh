#!/usr/bin/env bash
# make fuzz: run every go test -fuzz target for a bounded time each
# (FUZZTIME, default 60s) and report executions per target.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-60s}
fail=0
while IFS= read -r line; do
  file=${line%%:*}; name=$(sed -E 's/.*func (Fuzz[A-Za-z0-9_]*).*/\1/' <<<"$line")
  pkg=./$(dirname "$file")
  echo "== $pkg $name ($t)"
  # A short minimise time keeps a target from spending its whole budget
  # shrinking one new input. Go reports "context deadline exceeded" when the
  # time runs out mid-minimisation; that is not a crash (no failing input).
  if ! out=$(go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" -fuzzminimizetime 3s "$pkg" 2>&1); then
    if grep -qE 'Failing input|panic:' <<<"$out" || ! grep -q 'context deadline exceeded' <<<"$out"; then
      echo "$out" | tail -20; fail=1
    fi
  fi
  echo "$out" | grep -E 'fuzz: elapsed:.*execs' | tail -1
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]*\(' internal cmd | sort)
exit $fail
