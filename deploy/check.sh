#!/usr/bin/env bash
# Checks the Helm chart without a cluster, for the default values and every values file in the
# repo (deploy/helm/sluice/ci/*.yaml, deploy/bench/values.yaml):
#   helm lint --strict; helm template;
#   kubernetes-validate --strict against Kubernetes 1.30 and the newest version it knows;
#   `sluice validate` on every sluice config the chart renders (with stand-ins for files that
#   come from Secrets);
#   checkov on the rendered manifests (skips only with a justification, in deploy/checkov.yaml)
#   and on the Dockerfile.
# SLUICE=path picks the sluice binary (default target/debug/sluice, built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/tools.sh
helm=target/tools/helm/helm
venv=target/tools/venv/bin
sluice=${SLUICE:-target/debug/sluice}
[ -x "$sluice" ] || cargo build --quiet --bin sluice
chart=deploy/helm/sluice
out=$(mktemp -d)
mkdir -p "$out/configs"
trap 'rm -rf "$out"' EXIT

newest=$("$venv/python" -c 'import kubernetes_validate.utils as u; print(u.latest_version())')
values=("" $chart/ci/*.yaml)
[ -f deploy/bench/values.yaml ] && values+=(deploy/bench/values.yaml)

for v in "${values[@]}"; do
  name=$(basename "${v:-default}" .yaml)
  args=()
  [ -n "$v" ] && args=(-f "$v")
  echo "== $name"
  "$helm" lint --strict --quiet "$chart" "${args[@]}"
  "$helm" template sluice "$chart" --namespace observability "${args[@]}" >"$out/$name.yaml"
  # PodMonitor is a prometheus-operator CRD, which kubernetes-validate has no schema for.
  for k8s in 1.30.0 "$newest"; do
    "$venv/kubernetes-validate" --strict --quiet -k "$k8s" "$out/$name.yaml"
  done
  # Every rendered sluice config must pass `sluice validate`; ${env:VAR} references are given
  # placeholders, as the pod's environment would hold the real values.
  "$venv/python" - "$out/$name.yaml" "$out/configs/$name" <<'PY'
import sys, yaml
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
for d in docs:
    if d["kind"] == "ConfigMap" and "config.yaml" in d.get("data", {}):
        with open(f"{sys.argv[2]}-{d['metadata']['name']}.config.yaml", "w") as f:
            f.write(d["data"]["config.yaml"])
PY
  for cfg in "$out/configs/$name"-*.config.yaml; do
    # Files the pod gets from Secrets (security.*) are given stand-ins: a certificate and key
    # made here (also standing in as the CA) and a token, so validate reads real files.
    if grep -q /var/run/secrets/sluice/ "$cfg"; then
      secrets=$out/secrets
      if [ ! -d "$secrets" ]; then
        mkdir -p "$secrets/tls" "$secrets/auth"
        openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=check -addext \
          "subjectAltName=DNS:localhost" -keyout "$secrets/tls/tls.key" \
          -out "$secrets/tls/tls.crt" 2>/dev/null
        cp "$secrets/tls/tls.crt" "$secrets/tls/ca.crt"
        echo stand-in-token >"$secrets/auth/token"
      fi
      sed -i "s#/var/run/secrets/sluice/#$secrets/#g" "$cfg"
    fi
    # Variables named by `node_from_env_var` (k8sattributes) are read the same way.
    envs=$( (grep -o '\${env:[A-Za-z_][A-Za-z0-9_]*' "$cfg" | sed 's/^\${env://'
      grep -o 'node_from_env_var: *[A-Za-z_][A-Za-z0-9_]*' "$cfg" | sed 's/.*: *//') |
      sort -u || true)
    env_args=()
    for e in $envs; do env_args+=("$e=placeholder"); done
    env "${env_args[@]}" "$sluice" validate --config "$cfg"
  done
done

# The benchmark's own manifests (namespace, consumer, producer) against the same schemas.
for k8s in 1.30.0 "$newest"; do
  "$venv/kubernetes-validate" --strict --quiet -k "$k8s" deploy/bench/namespace.yaml \
    deploy/bench/consumer.yaml deploy/bench/producer.yaml
done

"$venv/checkov" --config-file deploy/checkov.yaml \
  $(printf -- '--file %s ' "$out"/*.yaml)
# The image: non-root user, no secrets, pinned stages (inline skips carry their reasons).
"$venv/checkov" --quiet --compact --skip-download --framework dockerfile --file Dockerfile
echo "all checks passed"
