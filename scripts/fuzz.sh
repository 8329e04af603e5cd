#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan + UBSan) in
# build-fuzz/ and runs each one for N seconds (default 60) on its seed
# corpus. New inputs go to build-fuzz/corpus/<target>/, never into the
# repo; a crash leaves build-fuzz/artifacts/<target>-crash-* and makes the
# script fail. Reproduce one with: build-fuzz/fuzz/<target> <artifact>
#
#   scripts/fuzz.sh          # 60 s per target
#   scripts/fuzz.sh 600      # longer, before a release
# Needs Debian's clang and libclang-rt-14-dev (libFuzzer's runtime).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
targets=(fuzz_jwt_verify fuzz_document_envelope fuzz_push_body fuzz_checkpoint fuzz_http_request)
build_dir=build-fuzz

for tool in clang clang++; do
  command -v "$tool" >/dev/null || { echo "fuzz.sh: $tool not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
done

CC=clang CXX=clang++ cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DROOMSYNC_FUZZ=ON >/dev/null
cmake --build "$build_dir" -j2 --target "${targets[@]}"

# Leaks count as findings; UBSan reports stop the run like ASan ones.
export ASAN_OPTIONS="abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"

status=0
for target in "${targets[@]}"; do
  work="$build_dir/corpus/$target"
  mkdir -p "$work" "$build_dir/artifacts"
  echo "== $target: ${seconds}s"
  # max_len: a little above the 8 KiB token limit, so the limit is exercised.
  if ! "$build_dir/fuzz/$target" "$work" "fuzz/corpus/$target" \
      -max_total_time="$seconds" -max_len=12288 -timeout=10 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$build_dir/artifacts/$target-" 2>"$build_dir/$target.log"; then
    echo "!! $target found a problem; see $build_dir/$target.log and $build_dir/artifacts/" >&2
    tail -40 "$build_dir/$target.log" >&2
    status=1
  else
    grep -E '^stat::(number_of_executed_units|new_units_added)|^Done' "$build_dir/$target.log" || true
  fi
done
exit "$status"
