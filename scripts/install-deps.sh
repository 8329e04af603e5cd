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
)
# Node.js drives the browser-side test clients; this machine image may ship its
# own build, so only install Debian's when there is none at all.
command -v node >/dev/null 2>&1 || packages+=(nodejs)
command -v npm >/dev/null 2>&1 || packages+=(npm)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
