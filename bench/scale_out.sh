#!/usr/bin/env bash
# The Vector guide's scale-out on one machine: an nginx L7 round-robin (as the ingress) in front
# of N sluice processes, each pinned to its own core (the pod's CPU limit), running the guide's
# pipeline (http_logs -> regex_parser -> tcp) into a socat consumer, driven by wrk with 100
# connections POSTing 256 KiB bodies of Apache lines. Prints the throughput for each N.
#
#   bench/scale_out.sh                                  # N = 1 and 2 on sluice cores 1 and 0
#   SLUICE_CORES="2 3 4 5 6 7" NGINX_CORES=0 LOAD_CORES=1 COUNTS="1 3 6" bench/scale_out.sh
#
# On a 2-core machine nginx, wrk and socat share the cores with sluice, so N = 2 measures the
# contention as much as the scaling; the same script runs unchanged on a bigger machine, where
# SLUICE_CORES, NGINX_CORES and LOAD_CORES keep them apart. Needs nginx, wrk, socat, curl
# (apt-get install nginx-light wrk socat curl).
set -euo pipefail
cd "$(dirname "$0")/.."

SLUICE_CORES=(${SLUICE_CORES:-1 0})
NGINX_CORES=${NGINX_CORES:-0}
LOAD_CORES=${LOAD_CORES:-0}
COUNTS=${COUNTS:-"1 ${#SLUICE_CORES[@]}"}
CONNECTIONS=${CONNECTIONS:-100}
DURATION=${DURATION:-20}
PORT=${PORT:-18080}
BASE=${BASE:-19100}
SLUICE=${SLUICE:-target/release/sluice}

for tool in nginx wrk socat curl taskset; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
[ -x "$SLUICE" ] || cargo build --release --quiet

work=$(mktemp -d)
pids=()
consumer_pid=
stop_all() { kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; pids=(); }
trap 'stop_all; kill "$consumer_pid" 2>/dev/null || true; rm -rf "$work"' EXIT

consumer=$((BASE + 99))
taskset -c "$LOAD_CORES" socat -u "TCP-LISTEN:$consumer,reuseaddr,fork" OPEN:/dev/null &
consumer_pid=$!

start_sluice() { # index core
  local i=$1 http=$((BASE + 2 * $1)) metrics=$((BASE + 2 * $1 + 1))
  cat >"$work/sluice-$i.yaml" <<YAML
receivers:
  http_logs:
    endpoint: 127.0.0.1:${http}
processors:
  regex_parser/apache:
    regex: '^(?P<host>[\w\.]+) - (?P<user>[\w\-]+) \[(?P<timestamp>[^\]]*)\] "(?P<method>[\w]+) (?P<path>[^"]*)" (?P<status>[\d]+) (?P<bytes_out>[\d]+)$'
exporters:
  tcp:
    endpoint: 127.0.0.1:${consumer}
    encoding: text
service:
  telemetry:
    logs: { level: warn }
    metrics:
      address: 127.0.0.1:${metrics}
  pipelines:
    logs:
      receivers: [http_logs]
      processors: [regex_parser/apache]
      exporters: [tcp]
YAML
  taskset -c "$2" "$SLUICE" --config "$work/sluice-$i.yaml" 2>"$work/sluice-$i.log" &
  pids+=($!)
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$metrics/metrics" >/dev/null && break; sleep 0.1; done
}

start_nginx() { # count
  {
    echo "worker_processes 1; daemon off; pid $work/nginx.pid; error_log $work/nginx.err warn;"
    echo "events { worker_connections 4096; }"
    echo "http { access_log off; client_max_body_size 0; proxy_request_buffering off;"
    echo "  proxy_http_version 1.1; proxy_set_header Connection \"\";"
    echo "  client_body_temp_path $work; proxy_temp_path $work;"
    echo "  upstream sluice { keepalive 256;"
    for i in $(seq 0 $(($1 - 1))); do echo "    server 127.0.0.1:$((BASE + 2 * i));"; done
    echo "  }"
    echo "  server { listen 127.0.0.1:$PORT; location / { proxy_pass http://sluice; } } }"
  } >"$work/nginx.conf"
  taskset -c "$NGINX_CORES" nginx -c "$work/nginx.conf" -e "$work/nginx.err" &
  pids+=($!)
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
}

# Accepted bytes over every sluice.
accepted() {
  local total=0
  for i in $(seq 0 $(($1 - 1))); do
    local b
    b=$(curl -s "http://127.0.0.1:$((BASE + 2 * i + 1))/metrics" |
      awk 'index($0, "sluice_receiver_accepted_bytes_total{") == 1 { print $2 }')
    total=$((total + ${b:-0}))
  done
  echo "$total"
}

for n in $COUNTS; do
  [ "$n" -le "${#SLUICE_CORES[@]}" ] || { echo "N=$n needs $n SLUICE_CORES" >&2; exit 1; }
  for i in $(seq 0 $((n - 1))); do start_sluice "$i" "${SLUICE_CORES[$i]}"; done
  start_nginx "$n"
  taskset -c "$LOAD_CORES" wrk -t1 -c"$CONNECTIONS" -d"$((DURATION + 4))s" --timeout 30s \
    -s bench/apache_post.lua "http://127.0.0.1:$PORT/" >"$work/wrk-$n.out" 2>&1 &
  wrk_pid=$!
  sleep 3
  b0=$(accepted "$n"); t0=$(date +%s.%N)
  sleep "$DURATION"
  b1=$(accepted "$n"); t1=$(date +%s.%N)
  wait "$wrk_pid" || true
  errors=$(grep -Eo 'Non-2xx or 3xx responses: [0-9]+' "$work/wrk-$n.out" | grep -Eo '[0-9]+$' || echo 0)
  awk -v n="$n" -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v e="$errors" 'BEGIN {
    printf "sluice_processes=%d throughput_mib_s=%.1f non_2xx=%s\n", n, (b1 - b0) / (t1 - t0) / 1048576, e }'
  stop_all
  sleep 1
done
kill "$consumer_pid" 2>/dev/null || true
