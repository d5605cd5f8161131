#!/usr/bin/env bash
# Multi-core scaling of one sluice process (its runtime sizes itself to the cores `taskset`
# gives it): N = 1, 2, 4, 8 cores, with the load generators on the other cores of a 16-core
# machine. Two workloads:
#   - the Vector guide's pipeline (bench/phase1.sh: wrk -> http_logs -> regex_parser -> tcp ->
#     socat), in MiB/s of bodies and lines/s;
#   - OTLP/HTTP logs (bench/otlp_vs_rotel.sh with ROTEL=none), forwarded encoded (batch) and
#     decoded (log_transform), in records/s.
# Prints one line per N and workload with sluice's CPU use, so where growth stops shows as
# cores left idle.
#
#   COUNTS="1 2 4 8" LOAD_CORES=8-15 bench/scale_cores.sh
set -euo pipefail
cd "$(dirname "$0")/.."
COUNTS=${COUNTS:-"1 2 4 8"}
LOAD_CORES=${LOAD_CORES:-8-15}
DURATION=${DURATION:-10}
WORKLOADS=${WORKLOADS:-"guide otlp_forward otlp_decode"}
for n in $COUNTS; do
  cores="0-$((n - 1))"
  for w in $WORKLOADS; do
    case $w in
      guide)
        out=$(SLUICE_CORE=$cores LOAD_CORES=$LOAD_CORES WRK_THREADS=${WRK_THREADS:-4} \
          CONNECTIONS=$((100 * n)) DURATION=$DURATION ENCODING=${ENCODING:-json} bench/phase1.sh 2>&1) ;;
      otlp_forward)
        out=$(CORE=$cores LOAD_CORES=$LOAD_CORES ROTEL=none PROTOCOLS=http PROCESSORS=batch \
          CONNECTIONS=$((100 * n)) DURATION=$DURATION bench/otlp_vs_rotel.sh 2>/dev/null) ;;
      otlp_decode)
        out=$(CORE=$cores LOAD_CORES=$LOAD_CORES ROTEL=none PROTOCOLS=http \
          PROCESSORS="log_transform, batch" CONNECTIONS=$((100 * n)) DURATION=$DURATION \
          bench/otlp_vs_rotel.sh 2>/dev/null) ;;
    esac
    echo "cores=$n workload=$w $(echo "$out" | tr '\n' ' ')"
  done
done
