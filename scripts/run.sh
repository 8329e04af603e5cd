#!/usr/bin/env bash
# Sets up and runs roomsync as a single node: installs missing Debian
# packages, builds, assembles the demo chat's web root (build/web), and
# starts the gateway and the room service in one process on an embedded
# SQLite file, with auth off (development only). The demo is then at
# http://127.0.0.1:8080/ next to the API.
# Extra arguments are passed on, e.g. scripts/run.sh --http 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target roomsync
# TinyBase for the demo, from clients/js/package-lock.json: installed when
# missing or when the lock file changed since the last install (npm keeps
# its own copy in node_modules/.package-lock.json).
if [[ ! -d clients/js/node_modules/tinybase ||
      clients/js/package-lock.json -nt clients/js/node_modules/.package-lock.json ]]; then
  (cd clients/js && npm ci --no-audit --no-fund --omit=dev)
fi
node clients/js/scripts/build-web.mjs build/web
mkdir -p data
# meta=server-wins: the demo keeps each room's key-derivation salt in
# collection `meta`, and the first writer must win it. Later arguments win
# over these (e.g. another --collection_policies).
exec build/services/node/roomsync --http 127.0.0.1:8080 --store sqlite:./data/roomsync.db \
  --auth off --web build/web --collection_policies meta=server-wins "$@"
