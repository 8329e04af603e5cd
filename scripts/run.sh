#!/usr/bin/env bash
# Sets up and runs roomsync as a single node: installs missing Debian
# packages, builds, and starts the gateway and the room service in one
# process on an embedded SQLite file, with auth off (development only).
# Extra arguments are passed on, e.g. scripts/run.sh --http 127.0.0.1:9090
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j2 --target roomsync
mkdir -p data
exec build/services/node/roomsync --http 127.0.0.1:8080 --store sqlite:./data/roomsync.db \
  --auth off "$@"
