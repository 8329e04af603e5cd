#!/usr/bin/env bash
# Sets up and runs every test: installs missing Debian packages, builds
# with -j2, starts a throwaway PostgreSQL, runs the whole suite with ctest.
#
#   scripts/test.sh              # RelWithDebInfo build in build/
#   scripts/test.sh --sanitize   # AddressSanitizer + UBSan build in build-asan/
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-DCMAKE_BUILD_TYPE=RelWithDebInfo)
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-asan
  cmake_args=(-DCMAKE_BUILD_TYPE=Debug -DROOMSYNC_SANITIZE=ON -DROOMSYNC_BENCH=OFF)
  # Leaks in gRPC's and civetweb's process-lifetime singletons are not ours;
  # everything else must be clean, and the first error stops the test.
  export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:${ASAN_OPTIONS:-}"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
fi

bash scripts/install-deps.sh
cmake -S . -B "$build_dir" -G Ninja "${cmake_args[@]}"
cmake --build "$build_dir" -j2
(cd tests/e2e && npm ci --no-audit --no-fund)
# The browser client's locked packages (TinyBase, playwright-core; no browser
# download: the tests drive Debian's chromium).
(cd clients/js && npm ci --no-audit --no-fund)
# The benchmarks and their smoke tests (label bench) are in the main build
# only (-DROOMSYNC_BENCH=OFF above): under the sanitizers they measure
# nothing and took a third of the run, and the code paths they drive are
# the e2e tests' too. -LE bench also leaves out any bench-labelled test of
# a build dir configured before that option existed.
ctest_args=()
if [[ "$build_dir" == build-asan ]]; then ctest_args=(-LE bench); fi
# Tests that start PostgreSQL databases and real processes share two cores.
bash scripts/with-postgres.sh ctest --test-dir "$build_dir" --output-on-failure -j2 --timeout 600 "${ctest_args[@]}"
