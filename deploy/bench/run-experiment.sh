#!/usr/bin/env bash
# run-experiment.sh: the Vector guide's four scaling phases on sluice, with the same table.
#
#   kubectl apply -f deploy/bench/namespace.yaml -f deploy/bench/consumer.yaml
#   helm upgrade --install sluice deploy/helm/sluice -n sluice-perf -f deploy/bench/values.yaml
#   BYTES_PER_SECOND="65 MiB" deploy/bench/run-experiment.sh
#
# Phases: 1, 3 and 8 gateway pods scaled by hand, then the chart's HPA (70% CPU, max 8) from
# one pod. Throughput per pod is read from sluice's own /metrics through the API server's pod
# proxy (sluice_receiver_accepted_bytes_total and otelcol_receiver_accepted_log_records_total
# of http_logs, two samples WINDOW seconds apart); CPU from `kubectl top`.
# Needs kubectl, helm, metrics-server and ingress-nginx in the cluster; the producer is applied
# here with $BYTES_PER_SECOND.
set -euo pipefail
cd "$(dirname "$0")/../.."

NAMESPACE=${NAMESPACE:-sluice-perf}
RELEASE=${RELEASE:-sluice}
BYTES_PER_SECOND=${BYTES_PER_SECOND:-65 MiB}
WARMUP=${WARMUP:-20}
WINDOW=${WINDOW:-30}
DEPLOYMENT=sluice-gateway
SELECTOR=app.kubernetes.io/component=gateway,app.kubernetes.io/instance=$RELEASE
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log() { echo "==> $*" >&2; }

pods() {
  kubectl get pods -n "$NAMESPACE" -l "$SELECTOR" --field-selector=status.phase=Running \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'
}

# One pod's counters: "<accepted bytes> <accepted records>".
counters() {
  kubectl get --raw "/api/v1/namespaces/$NAMESPACE/pods/$1:8888/proxy/metrics" |
    awk '/^sluice_receiver_accepted_bytes_total\{receiver="http_logs"/ { b += $2 }
         /^otelcol_receiver_accepted_log_records_total\{receiver="http_logs"/ { r += $2 }
         END { printf "%d %d\n", b, r }'
}

# Total throughput over every running pod: "<MiB/s> <events/s>".
measure() {
  local before after
  for p in $(pods); do echo "$p $(counters "$p")"; done >"$work/before"
  sleep "$WINDOW"
  for p in $(pods); do echo "$p $(counters "$p")"; done >"$work/after"
  join "$work/before" "$work/after" |
    awk -v w="$WINDOW" '{ b += $4 - $2; r += $5 - $3 }
      END { printf "%.2f %.0f\n", b / w / 1048576, r / w }'
}

avg_cpu() {
  kubectl top pods -n "$NAMESPACE" -l "$SELECTOR" --no-headers 2>/dev/null |
    awk '{ gsub("m", "", $2); s += $2; n++ } END { if (n) printf "%dm", s / n; else print "?" }'
}

static_phase() { # phase replicas
  log "Phase $1: $2 pod(s)"
  kubectl scale deployment "$DEPLOYMENT" -n "$NAMESPACE" --replicas="$2" >/dev/null
  kubectl rollout status deployment "$DEPLOYMENT" -n "$NAMESPACE" --timeout=180s >&2
  sleep "$WARMUP"
  read -r mibps eps < <(measure)
  printf 'P%s_MIBPS=%s\nP%s_EPS=%s\nP%s_CPU=%s\nP%s_PODS=%s\n' \
    "$1" "$mibps" "$1" "$eps" "$1" "$(avg_cpu)" "$1" "$2" >"$work/phase$1"
}

hpa_phase() {
  log "Phase 4: one pod, then the chart's HPA (70% CPU, max 8)"
  kubectl scale deployment "$DEPLOYMENT" -n "$NAMESPACE" --replicas=1 >/dev/null
  kubectl rollout status deployment "$DEPLOYMENT" -n "$NAMESPACE" --timeout=180s >&2
  helm upgrade "$RELEASE" deploy/helm/sluice -n "$NAMESPACE" -f deploy/bench/values.yaml \
    --set gateway.autoscaling.enabled=true --reuse-values >/dev/null
  local start=$SECONDS last=0 stable=0 events=0
  # Equilibrium: the replica count unchanged for 90 s.
  while [ "$stable" -lt 90 ] && [ $((SECONDS - start)) -lt 900 ]; do
    sleep 15
    local now
    now=$(kubectl get deployment "$DEPLOYMENT" -n "$NAMESPACE" -o jsonpath='{.spec.replicas}')
    if [ "$now" != "$last" ]; then events=$((events + 1)); last=$now; stable=0; else stable=$((stable + 15)); fi
    log "  $now pod(s), CPU $(avg_cpu) per pod"
  done
  read -r mibps eps < <(measure)
  printf 'P4_MIBPS=%s\nP4_EPS=%s\nP4_CPU=%s\nP4_PODS=%s\nP4_EVENTS=%s\nP4_ELAPSED=%ss\n' \
    "$mibps" "$eps" "$(avg_cpu)" "$last" "$((events - 1))" "$((SECONDS - start - stable))" >"$work/phase4"
  helm upgrade "$RELEASE" deploy/helm/sluice -n "$NAMESPACE" -f deploy/bench/values.yaml \
    --set gateway.autoscaling.enabled=false --reuse-values >/dev/null
}

kubectl cluster-info --request-timeout=5s >/dev/null || { echo "cannot reach the cluster" >&2; exit 1; }
log "Producer: lading at $BYTES_PER_SECOND/s"
sed "s|bytes_per_second: \"65 MiB\"|bytes_per_second: \"$BYTES_PER_SECOND\"|" deploy/bench/producer.yaml |
  kubectl apply -f - >/dev/null
kubectl rollout restart deployment producer -n "$NAMESPACE" >/dev/null
sleep 20

static_phase 1 1
static_phase 2 3
static_phase 3 8
hpa_phase

declare -A R
for f in "$work"/phase*; do while IFS='=' read -r k v; do R[$k]=$v; done <"$f"; done
row() { printf '| %-12s | %-13s | %-13s | %-13s | %-13s |\n' "$@"; }
echo
row "" "Phase 1" "Phase 2" "Phase 3" "Phase 4"
row "" "1 pod" "3 pods" "8 pods" "HPA (auto)"
row "Throughput" "${R[P1_MIBPS]} MiB/s" "${R[P2_MIBPS]} MiB/s" "${R[P3_MIBPS]} MiB/s" "${R[P4_MIBPS]} MiB/s"
row "Events/s" "${R[P1_EPS]}" "${R[P2_EPS]}" "${R[P3_EPS]}" "${R[P4_EPS]}"
row "Avg CPU/pod" "${R[P1_CPU]}" "${R[P2_CPU]}" "${R[P3_CPU]}" "${R[P4_CPU]}"
row "Pods" "${R[P1_PODS]}" "${R[P2_PODS]}" "${R[P3_PODS]}" "${R[P4_PODS]}"
echo
echo "Phase 4: ${R[P4_EVENTS]} scale events, equilibrium after ${R[P4_ELAPSED]}."
