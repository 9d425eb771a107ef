#!/usr/bin/env bash
# Runs each libFuzzer target of a fuzz build for a bounded time, starting
# from its seed corpus (tests/fuzz/corpus/<target>) and dictionary, and fails
# on the first crash, leak, timeout, sanitizer report or broken invariant.
#   tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]   (default 60)
# New inputs go to a scratch corpus under BUILD_DIR (the committed seeds are
# read only); a failing input is written to BUILD_DIR/fuzz-artifacts/ and
# belongs in the seed corpus once its cause is fixed.
set -euo pipefail
build=${1:?usage: tests/fuzz/run.sh BUILD_DIR [SECONDS_PER_TARGET]}
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "$build" && pwd)
mkdir -p "$build/fuzz-artifacts"
status=0
for target in codec http; do
  bin="$build/tests/fuzz/fuzz_$target"
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (configure with -DBULWARK_FUZZ=ON and clang++)" >&2; exit 2; }
  work="$build/fuzz-corpus/$target"
  mkdir -p "$work"
  log="$build/fuzz-artifacts/$target.log"
  echo "fuzz_$target: ${seconds}s"
  # -timeout: an input that takes 5 s is a hang (inputs take milliseconds);
  # -rss_limit_mb: a leak or an unbounded allocation.
  if "$bin" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 -max_len=16384 \
       -dict="$here/$target.dict" -artifact_prefix="$build/fuzz-artifacts/$target-" \
       -print_final_stats=1 "$work" "$here/corpus/$target" > "$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb" "$log" | tr '\n' ' '
    echo
  else
    status=1
    echo "fuzz_$target FAILED; the input is in $build/fuzz-artifacts/:" >&2
    grep -E -A25 "==ERROR|invariant failed|runtime error|deadly signal|timeout|out-of-memory" "$log" | head -60 >&2
  fi
done
exit $status
