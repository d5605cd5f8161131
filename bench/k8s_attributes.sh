#!/usr/bin/env bash
# What k8sattributes costs, against sluice-kube-mock (a stand-in API server; no cluster runs
# here). Memory: sluice's resident memory once its pod metadata is synced, watching an empty
# cluster and one of PODS pods (each with labels, annotations, an owner and two containers, as
# a Deployment's pods are), measured in one sitting. CPU: OTLP/HTTP logs from sluice-loadgen
# through `log_transform` alone and then `log_transform, k8sattributes` (every request matched
# to a pod by its connection), sluice pinned to CORE; the difference per record is what the
# processor costs.
#
#   bench/k8s_attributes.sh
#   PODS=50000 DURATION=20 bench/k8s_attributes.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CORE=${CORE:-1}
LOAD_CORES=${LOAD_CORES:-0}
PODS=${PODS:-10000}
DURATION=${DURATION:-10}
RECORDS=${RECORDS:-100}
CONNECTIONS=${CONNECTIONS:-50}
PORT=${PORT:-14328}
SLUICE=${SLUICE:-target/release/sluice}
LOADGEN=${LOADGEN:-target/release/sluice-loadgen}
KUBE=${KUBE:-target/release/sluice-kube-mock}

work=$(mktemp -d)
pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -x "$SLUICE" ] && [ -x "$LOADGEN" ] && [ -x "$KUBE" ] || cargo build --release --quiet --bins

mock() { # name -> port on stdout
  taskset -c "$LOAD_CORES" "$KUBE" --listen 127.0.0.1:0 >"$work/$1.addr" 2>/dev/null &
  pids+=($!)
  for _ in $(seq 50); do [ -s "$work/$1.addr" ] && break; sleep 0.1; done
  sed 's/.*://' "$work/$1.addr"
}

kubeconfig() { # port file
  cat >"$2" <<YAML
apiVersion: v1
kind: Config
clusters: [{name: m, cluster: {server: "http://127.0.0.1:$1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: m, context: {cluster: m, user: u}}]
current-context: m
YAML
}

load_pods() { # port count
  python3 - "$1" "$2" <<'PY'
import json, sys, urllib.request
port, n = int(sys.argv[1]), int(sys.argv[2])
def pod(i):
    ip = "127.0.0.1" if i == 0 else f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}"
    rs = f"svc-{i % 500}-7d9f8b6c5"
    return {"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{rs}-{i:05x}", "namespace": f"team-{i % 40}",
            "labels": {"app": f"svc-{i % 500}", "pod-template-hash": "7d9f8b6c5",
                       "app.kubernetes.io/version": "1.4.2"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T10:00:00Z"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": rs,
                                 "uid": f"rs-{i % 500}", "controller": True}]},
        "spec": {"nodeName": f"node-{i % 100}", "containers": [
            {"name": "app", "image": f"ghcr.io/acme/svc-{i % 500}:1.4.2"},
            {"name": "envoy", "image": "envoyproxy/envoy:v1.31.0"}]},
        "status": {"podIP": ip, "startTime": "2026-11-27T10:00:00Z", "containerStatuses": [
            {"name": n, "containerID": f"containerd://{i:060x}{k}", "image": "", "imageID": "",
             "ready": True, "restartCount": 0} for k, n in enumerate(["app", "envoy"])]}}
for start in range(0, n, 1000):
    body = json.dumps([pod(i) for i in range(start, min(n, start + 1000))]).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/_mock/objects", body, method="POST")
    urllib.request.urlopen(req).read()
PY
}

config() { # processors kubeconfig
  cat <<YAML
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:${PORT}
processors:
  memory_limiter: { limit_mib: 4000, spike_limit_mib: 100, check_interval: 100ms }
  log_transform: {}
  k8sattributes:
    auth_type: kubeConfig
    wait_for_metadata: true
    wait_for_metadata_timeout: 5m
    extract:
      labels: [{key: app}]
exporters:
  debug: { verbosity: basic }
service:
  telemetry:
    logs: { level: warn }
    metrics:
      address: 127.0.0.1:$((PORT + 1))
  pipelines:
    logs:
      receivers: [otlp]
      processors: [$1]
      exporters: [debug]
YAML
}

start_sluice() { # name processors kubeconfig
  config "$2" >"$work/$1.yaml"
  KUBECONFIG=$3 taskset -c "$CORE" "$SLUICE" --config "$work/$1.yaml" >/dev/null 2>"$work/$1.log" &
  pid=$!
  pids+=($pid)
  for _ in $(seq 3000); do (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && break; sleep 0.1; done
}

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

empty=$(mock empty); kubeconfig "$empty" "$work/empty.kubeconfig"
full=$(mock full); kubeconfig "$full" "$work/full.kubeconfig"
t0=$(date +%s.%N); load_pods "$full" "$PODS"; t1=$(date +%s.%N)
awk -v n="$PODS" -v a="$t0" -v b="$t1" 'BEGIN { printf "loaded %d pods into the mock in %.1f s\n", n, b - a }'

# The live heap (what sluice's counting allocator has handed out and not had back) is read by
# memory_limiter on the request path: one small request after the sync makes it read.
heap_bytes() {
  curl -s -o /dev/null -H 'Content-Type: application/json' \
    --data-binary '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}' \
    "http://127.0.0.1:$PORT/v1/logs"
  sleep 0.3
  curl -s -o /dev/null -H 'Content-Type: application/json' \
    --data-binary '{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"body":{"stringValue":"x"}}]}]}]}' \
    "http://127.0.0.1:$PORT/v1/logs"
  curl -s "http://127.0.0.1:$((PORT + 1))/metrics" | awk '/^sluice_memory_limiter_heap_bytes/ { print $2 }'
}
for cluster in empty full; do
  start_sluice "mem-$cluster" "memory_limiter, log_transform, k8sattributes" "$work/$cluster.kubeconfig"
  sleep 2
  echo "heap_bytes_${cluster}=$(heap_bytes) rss_kib_${cluster}=$(rss_kib "$pid")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
done

run() { # name processors
  start_sluice "$1" "$2" "$work/full.kubeconfig"
  sleep 1
  local c0 c1 t0 t1 rate
  t0=$(date +%s.%N); c0=$(cpu_ticks "$pid")
  taskset -c "$LOAD_CORES" "$LOADGEN" "http://127.0.0.1:$PORT" --connections "$CONNECTIONS" \
    --records "$RECORDS" --duration "$DURATION" >"$work/$1.out"
  c1=$(cpu_ticks "$pid"); t1=$(date +%s.%N)
  local tagged
  tagged=$(curl -s "http://127.0.0.1:$((PORT + 1))/metrics" |
    awk '/^sluice_k8sattributes_associated_total/ { print $2 }')
  kill "$pid"; wait "$pid" 2>/dev/null || true
  rate=$(awk -F= '/^accepted_records_per_s=/ { print $2 }' "$work/$1.out")
  echo "$1 resources_tagged=${tagged:-0}"
  awk -v n="$1" -v r="$rate" -v c=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" -v t0="$t0" -v t1="$t1" 'BEGIN {
    secs = t1 - t0; cpu = c / hz
    printf "%s records_s=%s cpu_pct=%.0f cpu_us_per_record=%.3f\n", n, r, 100 * cpu / secs, 1e6 * cpu / (r * secs) }'
}
run log_transform "log_transform"
run log_transform_k8sattributes "log_transform, k8sattributes"
