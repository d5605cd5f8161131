#!/usr/bin/env bash
# End to end, the EDOT gateway's job: OTLP/HTTP -> sluice (otlp -> batch -> elasticsearch)
# -> sluice-es-mock (--discard: answers every item 201 without parsing). sluice is pinned to
# CORE; the load generator and the mock share LOAD_CORES. Each mapping mode (and, for context,
# a pipeline that forwards the same data encoded to `debug`) runs in turn under the same load.
# Prints accepted items/s (log records, spans or data points), sluice's CPU use, and its CPU
# time per item, which is what the exporter costs whether or not the load saturates the core.
#
#   bench/otlp_to_es.sh
#   MODES="otel" COMPRESSION=none DURATION=30 bench/otlp_to_es.sh
#   SIGNAL=traces bench/otlp_to_es.sh     # spans (every other with an event: 1.5 documents each)
#   SIGNAL=metrics bench/otlp_to_es.sh    # data points, five per pod document
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=${CORE:-1}
LOAD_CORES=${LOAD_CORES:-0}
CONNECTIONS=${CONNECTIONS:-200}
DURATION=${DURATION:-15}
RECORDS=${RECORDS:-100}
SIGNAL=${SIGNAL:-logs}
case "$SIGNAL" in
  logs) MODES=${MODES:-otel ecs raw} ;;
  traces|metrics) MODES=${MODES:-otel} ;; # ecs and raw take logs only
  *) echo "SIGNAL must be logs, traces or metrics" >&2; exit 2 ;;
esac
COMPRESSION=${COMPRESSION:-gzip}
PORT=${PORT:-14318}
ES_PORT=${ES_PORT:-19200}
SLUICE=${SLUICE:-target/release/sluice}
LOADGEN=${LOADGEN:-target/release/sluice-loadgen}
MOCK=${MOCK:-target/release/sluice-es-mock}

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -x "$SLUICE" ] && [ -x "$LOADGEN" ] && [ -x "$MOCK" ] || cargo build --release --quiet --bins

taskset -c "$LOAD_CORES" "$MOCK" --listen "127.0.0.1:$ES_PORT" --discard >/dev/null 2>"$work/mock.log" &
pids+=($!)

config() { # exporter section
  cat <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${PORT}
processors:
  batch: {}
exporters:
$1
service:
  telemetry:
    logs: { level: warn }
    metrics:
      address: 127.0.0.1:$((PORT + 1))
  pipelines:
    ${SIGNAL}:
      receivers: [otlp]
      processors: [batch]
      exporters: [$2]
YAML
}

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run() { # name config-file
  local name=$1
  taskset -c "$CORE" "$SLUICE" --config "$2" >/dev/null 2>"$work/$name.log" &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  local t0 c0 c1 t1
  t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CORES" "$LOADGEN" "http://127.0.0.1:$PORT" --connections "$CONNECTIONS" \
    --signal "$SIGNAL" --records "$RECORDS" --duration "$DURATION" >"$work/$name.out"
  c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rate failed
  rate=$(awk -F= '/^accepted_records_per_s=/ { print $2 }' "$work/$name.out")
  failed=$(awk -F= '/^failed_requests=/ { print $2 }' "$work/$name.out")
  awk -v n="$name" -v r="$rate" -v f="$failed" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" \
    -v t0="$t0" -v t1="$t1" 'BEGIN {
      secs = t1 - t0; cpu = c / hz
      printf "%s items_s=%s cpu_pct=%.0f cpu_us_per_item=%.2f failed_requests=%s\n",
        n, r, 100 * cpu / secs, 1e6 * cpu / (r * secs), f }'
}

config "  debug: { verbosity: basic }" debug >"$work/debug.yaml"
run "${SIGNAL}_forward_encoded_to_debug" "$work/debug.yaml"
for mode in $MODES; do
  config "  elasticsearch:
    endpoint: http://127.0.0.1:${ES_PORT}
    compression: ${COMPRESSION}
    mapping: { mode: ${mode} }" elasticsearch >"$work/es-$mode.yaml"
  run "${SIGNAL}_elasticsearch_${mode}_${COMPRESSION}" "$work/es-$mode.yaml"
done
curl -s "http://127.0.0.1:$ES_PORT/_mock/stats" 2>/dev/null | sed 's/^/mock_stats=/' || true
echo
