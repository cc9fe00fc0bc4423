#!/usr/bin/env bash
# `make test`: every phase in order, each timed, then a table of the phases' times and
# the closing `tests: N passed, M failed` line (cargo's `test result:` lines plus the
# wasm and browser runners' own). A phase that fails is reported and the later test
# phases still run (a failed install or build stops the run: nothing after it could).
set -uo pipefail
cd "$(dirname "$0")/.."
MAKE=${MAKE:-make}
LOG=target/test.log
mkdir -p target
: > "$LOG"
names=() secs=() codes=()
T0=$(date +%s%3N)

phase() {
  local name=$1
  shift
  local t=$(date +%s%3N)
  echo "== phase $name: $*" | tee -a "$LOG"
  "$@" 2>&1 | tee -a "$LOG"
  local rc=${PIPESTATUS[0]}
  names+=("$name") secs+=("$(( $(date +%s%3N) - t ))") codes+=("$rc")
  return "$rc"
}

# Milliseconds as seconds with one decimal.
seconds() { printf "%d.%d" $(( $1 / 1000 )) $(( $1 % 1000 / 100 )); }

summary() {
  echo
  echo "phase      seconds  result"
  for i in "${!names[@]}"; do
    printf "%-9s %8s  %s\n" "${names[$i]}" "$(seconds "${secs[$i]}")" "$([ "${codes[$i]}" = 0 ] && echo ok || echo "FAILED (exit ${codes[$i]})")"
  done
  printf "%-9s %8s\n" total "$(seconds $(( $(date +%s%3N) - T0 )))"
  awk '/^test result:/ {p += $4; f += $6} /^(wasm|browser): [0-9]+ passed/ {p += $2; f += $4} END {printf "tests: %d passed, %d failed\n", p, f}' "$LOG"
}

fail=0
if ! phase setup "$MAKE" --no-print-directory setup model setup-browser || ! phase build "$MAKE" --no-print-directory test-build; then
  summary
  exit 1
fi
phase cargo "$MAKE" --no-print-directory test-cargo || fail=1
phase wasm "$MAKE" --no-print-directory test-wasm || fail=1
phase browser "$MAKE" --no-print-directory test-browser-only || fail=1
summary
exit "$fail"
