#!/usr/bin/env bash
# Reproduces Phase 1 of the Vector guide on one machine: sluice pinned to one core runs
# http_logs -> regex_parser (the guide's Apache regex) -> tcp, wrk drives it from another core
# with 100 connections POSTing 256 KiB bodies of varied Apache lines, socat consumes the output.
#
#   bench/phase1.sh                      # json codec, 20 s
#   ENCODING=text DURATION=30 bench/phase1.sh
#
# Environment: SLUICE_CORE (default 1), LOAD_CORES (default 0), CONNECTIONS (100),
# DURATION seconds (20), ENCODING (json|text), SLUICE (binary; default target/release/sluice),
# WRK_THREADS (1; more where sluice gets several cores: bench/scale_cores.sh).
# Prints: throughput_mib_s=... events_s=... cpu_pct=... (throughput counts received body bytes,
# as the guide does; cpu_pct is sluice's CPU time over wall time, 100 = one full core).
set -euo pipefail
cd "$(dirname "$0")/.."

SLUICE_CORE=${SLUICE_CORE:-1}
LOAD_CORES=${LOAD_CORES:-0}
CONNECTIONS=${CONNECTIONS:-100}
DURATION=${DURATION:-20}
ENCODING=${ENCODING:-json}
HTTP_PORT=${HTTP_PORT:-19000}
TCP_PORT=${TCP_PORT:-19001}
METRICS_PORT=${METRICS_PORT:-19888}
SLUICE=${SLUICE:-target/release/sluice}
WRK_THREADS=${WRK_THREADS:-1}

for tool in wrk socat taskset curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y wrk socat util-linux curl" >&2; exit 1; }
done
[ -x "$SLUICE" ] || cargo build --release --quiet

work=$(mktemp -d)
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
pids=()
trap cleanup EXIT

cat >"$work/sluice.yaml" <<YAML
receivers:
  http_logs:
    endpoint: 127.0.0.1:${HTTP_PORT}
processors:
  regex_parser/apache:
    regex: '^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>[\w]+) (?P<path>[^"]*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$'
exporters:
  tcp:
    endpoint: 127.0.0.1:${TCP_PORT}
    encoding: ${ENCODING}
service:
  telemetry:
    logs: { level: warn }
    metrics:
      address: 127.0.0.1:${METRICS_PORT}
  pipelines:
    logs:
      receivers: [http_logs]
      processors: [regex_parser/apache]
      exporters: [tcp]
YAML

taskset -c "$LOAD_CORES" socat -u TCP-LISTEN:${TCP_PORT},reuseaddr,fork OPEN:/dev/null &
pids+=($!)
taskset -c "$SLUICE_CORE" "$SLUICE" --config "$work/sluice.yaml" 2>"$work/sluice.log" &
sluice_pid=$!
pids+=($sluice_pid)
for _ in $(seq 100); do curl -sf "http://127.0.0.1:${METRICS_PORT}/metrics" >/dev/null && break; sleep 0.1; done

metric() { curl -s "http://127.0.0.1:${METRICS_PORT}/metrics" | awk -v m="$1" 'index($0, m"{") == 1 { print $2 }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$sluice_pid/stat"; }

# Warm up (connections open, allocator and caches settle), then measure a steady window.
taskset -c "$LOAD_CORES" wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$((DURATION + 4))s" --timeout 30s -s bench/apache_post.lua "http://127.0.0.1:${HTTP_PORT}/" >"$work/wrk.out" 2>&1 &
wrk_pid=$!
sleep 3
b0=$(metric sluice_receiver_accepted_bytes_total); e0=$(metric otelcol_receiver_accepted_log_records_total)
c0=$(cpu_ticks); t0=$(date +%s.%N)
sleep "$DURATION"
b1=$(metric sluice_receiver_accepted_bytes_total); e1=$(metric otelcol_receiver_accepted_log_records_total)
c1=$(cpu_ticks); t1=$(date +%s.%N)
wait $wrk_pid || true
refused=$(metric otelcol_receiver_refused_log_records_total)
sent=$(metric otelcol_exporter_sent_log_records_total)
hz=$(getconf CLK_TCK)

awk -v b0="$b0" -v b1="$b1" -v e0="$e0" -v e1="$e1" -v c0="$c0" -v c1="$c1" -v t0="$t0" -v t1="$t1" -v hz="$hz" 'BEGIN {
  dt = t1 - t0
  printf "throughput_mib_s=%.1f events_s=%.0f cpu_pct=%.0f\n", (b1 - b0) / dt / 1048576, (e1 - e0) / dt, 100 * (c1 - c0) / hz / dt
}'
echo "encoding=${ENCODING} connections=${CONNECTIONS} duration_s=${DURATION} refused_records=${refused} exported_records=${sent}" >&2
grep -E '^wrk:|Requests/sec' "$work/wrk.out" >&2 || true
