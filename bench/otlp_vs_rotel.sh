#!/usr/bin/env bash
# OTLP logs, one core each: sluice (otlp -> batch -> debug basic) and rotel (rotel-agent with
# the blackhole exporter), driven in turn by the same load from sluice-loadgen (CONNECTIONS
# connections, one request of RECORDS records in flight on each) over OTLP/HTTP and OTLP/gRPC.
# Prints accepted records/s, the server's CPU use, and the ratio per protocol.
#
#   bench/otlp_vs_rotel.sh
#   RECORDS=512 DURATION=15 PROTOCOLS=grpc bench/otlp_vs_rotel.sh
#   PROCESSORS="log_transform, batch" bench/otlp_vs_rotel.sh   # a pipeline that decodes records
#
# ROTEL=none measures sluice alone (bench/scale_cores.sh, where CORE is a range of cores).
# rotel comes from PyPI (`pip install rotel` ships the rotel-agent binary); ROTEL=path overrides.
# Note: rotel answers once a request is queued; sluice answers after its exporter has it.
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=${CORE:-1}
LOAD_CORES=${LOAD_CORES:-0}
CONNECTIONS=${CONNECTIONS:-100}
DURATION=${DURATION:-20}
RECORDS=${RECORDS:-100}
PROTOCOLS=${PROTOCOLS:-http grpc}
# With only batch (and memory_limiter) sluice forwards logs encoded; a processor that reads
# records (log_transform, regex_parser) makes it decode them.
PROCESSORS=${PROCESSORS:-batch}
PORT=${PORT:-14318}
SLUICE=${SLUICE:-target/release/sluice}
LOADGEN=${LOADGEN:-target/release/sluice-loadgen}

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

if [ -z "${ROTEL:-}" ]; then
  venv=${VENV:-target/pyenv}
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  ls "$venv"/lib/python3*/site-packages/rotel/rotel-agent >/dev/null 2>&1 || "$venv/bin/pip" install -q rotel
  ROTEL=$(ls "$venv"/lib/python3*/site-packages/rotel/rotel-agent)
fi
[ -x "$SLUICE" ] && [ -x "$LOADGEN" ] || cargo build --release --quiet --bins

cat >"$work/sluice.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${PORT}
      grpc:
        endpoint: 127.0.0.1:$((PORT + 2))
processors:
  batch: {}
  log_transform: {}
exporters:
  debug:
    verbosity: basic
service:
  telemetry:
    logs: { level: warn }
    metrics:
      address: 127.0.0.1:$((PORT + 1))
  pipelines:
    logs:
      receivers: [otlp]
      processors: [${PROCESSORS}]
      exporters: [debug]
YAML

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

run() { # name protocol, then the command to pin
  local name=$1 proto=$2; shift 2
  taskset -c "$CORE" "$@" >/dev/null 2>"$work/$name-$proto.log" &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  sleep 0.5
  local url=http://127.0.0.1:$PORT
  [ "$proto" = grpc ] && url=grpc://127.0.0.1:$((PORT + 2))
  local t0 c0
  t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CORES" "$LOADGEN" "$url" --connections "$CONNECTIONS" --records "$RECORDS" \
    --duration "$DURATION" >"$work/$name-$proto.out"
  local c1 t1
  c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rate failed
  rate=$(awk -F= '/^accepted_records_per_s=/ { print $2 }' "$work/$name-$proto.out")
  failed=$(awk -F= '/^failed_requests=/ { print $2 }' "$work/$name-$proto.out")
  awk -v n="$name" -v p="$proto" -v r="$rate" -v f="$failed" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" \
    'BEGIN { printf "%s_%s_records_s=%s cpu_pct=%.0f failed_requests=%s\n", n, p, r, 100 * c / hz / (t1 - t0), f }' | tee -a "$work/summary"
  echo "$rate" >"$work/$name-$proto.rate"
}

for proto in $PROTOCOLS; do
  run sluice "$proto" "$SLUICE" --config "$work/sluice.yaml"
  [ "$ROTEL" = none ] && continue
  run rotel "$proto" "$ROTEL" start --otlp-http-endpoint "127.0.0.1:$PORT" \
    --otlp-grpc-endpoint "127.0.0.1:$((PORT + 2))" --exporter blackhole
  awk -v s="$(cat "$work/sluice-$proto.rate")" -v r="$(cat "$work/rotel-$proto.rate")" -v p="$proto" \
    'BEGIN { printf "ratio_sluice_over_rotel_%s=%.2f\n", p, s / r }'
done
