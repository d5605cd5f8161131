#!/usr/bin/env bash
# OTLP/HTTP logs, one core each: sluice (otlp -> debug basic) and rotel (rotel-agent with the
# blackhole exporter), driven in turn by the same wrk load (100 connections POSTing one
# prebuilt request of RECORDS records). Prints records/s for each and the ratio.
#
#   bench/otlp_vs_rotel.sh                 # needs wrk, and python3 for the body
#   RECORDS=500 DURATION=15 bench/otlp_vs_rotel.sh
#
# rotel comes from PyPI (`pip install rotel` ships the rotel-agent binary); ROTEL=path overrides.
# Note: rotel answers once a request is queued; sluice answers after its exporter has it.
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=${CORE:-1}
LOAD_CORES=${LOAD_CORES:-0}
CONNECTIONS=${CONNECTIONS:-100}
DURATION=${DURATION:-20}
RECORDS=${RECORDS:-100}
PORT=${PORT:-14318}
SLUICE=${SLUICE:-target/release/sluice}

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

venv=${VENV:-target/pyenv}
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q -r tests/python/requirements.txt
fi
[ -n "${ROTEL:-}" ] || { "$venv/bin/pip" install -q rotel; ROTEL=$(ls "$venv"/lib/python3*/site-packages/rotel/rotel-agent); }
[ -x "$SLUICE" ] || cargo build --release --quiet
"$venv/bin/python" bench/otlp_body.py "$work/body.pb" "$RECORDS"
echo "request: $RECORDS records, $(stat -c %s "$work/body.pb") bytes" >&2

cat >"$work/sluice.yaml" <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${PORT}
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
      exporters: [debug]
YAML

run() { # name, then the command to pin
  local name=$1; shift
  taskset -c "$CORE" "$@" >/dev/null 2>"$work/$name.log" &
  local pid=$!
  pids+=($pid)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
  BODY_FILE="$work/body.pb" taskset -c "$LOAD_CORES" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s \
    -s bench/otlp_post.lua "http://127.0.0.1:$PORT/" >"$work/$name.wrk" 2>&1 || true
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local rps non2xx
  rps=$(awk '/Requests\/sec/ { print $2 }' "$work/$name.wrk")
  non2xx=$(awk '/Non-2xx/ { print $5 }' "$work/$name.wrk")
  awk -v r="$rps" -v n="$RECORDS" -v name="$name" -v bad="${non2xx:-0}" \
    'BEGIN { printf "%s_records_s=%.0f non_2xx=%s\n", name, r * n, bad }' >>"$work/summary"
  echo "$rps" >"$work/$name.rps"
}

run sluice "$SLUICE" --config "$work/sluice.yaml"
run rotel "$ROTEL" start --otlp-http-endpoint "127.0.0.1:$PORT" --otlp-grpc-endpoint "127.0.0.1:$((PORT + 2))" --exporter blackhole
cat "$work/summary"
awk -v s="$(cat "$work/sluice.rps")" -v r="$(cat "$work/rotel.rps")" 'BEGIN { printf "ratio_sluice_over_rotel=%.2f\n", s / r }'
