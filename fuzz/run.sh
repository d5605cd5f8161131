#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60), starting from the seeds in fuzz/seeds/
# (copied into fuzz/corpus/, which grows as libFuzzer finds new paths), and prints one line per
# target: how long it ran, how many executions, and whether it stayed clean. A crash leaves its
# input in fuzz/artifacts/<target>/; make it a regression test (see README, Fuzzing).
#
#   fuzz/run.sh 300          # five minutes each
#   TARGETS="otlp_logs" fuzz/run.sh 60
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Not part of CI: CI
# builds the targets only (`cargo +nightly fuzz build`), so they cannot rot.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${1:-60}
targets=${TARGETS:-$(cargo +nightly fuzz list)}
cargo +nightly fuzz build -O >/dev/null
status=0
for t in $targets; do
  mkdir -p "corpus/$t" "artifacts/$t"
  [ -d "seeds/$t" ] && cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true
  log=$(mktemp)
  if cargo +nightly fuzz run -O "$t" "corpus/$t" -- -max_total_time="$SECONDS_EACH" \
      -artifact_prefix="artifacts/$t/" -print_final_stats=1 >"$log" 2>&1; then
    result=clean
  else
    result=FAILED
    status=1
  fi
  runs=$(awk '/stat::number_of_executed_units:/ { print $2 }' "$log" | tail -1)
  echo "$t seconds=$SECONDS_EACH executions=${runs:-?} result=$result"
  [ "$result" = clean ] || tail -30 "$log"
  rm -f "$log"
done
exit $status
