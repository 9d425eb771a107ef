#!/usr/bin/env bash
# Runs the chaos test (tests/e2e/chaos.mjs, ctest entry `chaos`) RUNS times in
# a row on a build, each run once (no retry), and prints a line per run: its
# checks, the requests and how they were answered, actor kills against
# restarts and escalations, and the sanitizer reports it left. Exits non-zero
# unless every run passed with no report.
#   tools/chaos-repeat.sh [BUILD_DIR] [RUNS]     (default: build-asan 20)
# The build is configured with -DBULWARK_TESTS=ON (tests/run.sh --stage
# sanitize makes build-asan); ctest gives the run the build's sanitizer
# settings and BULWARK_TEST_TIME_SCALE.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-asan}
runs=${2:-20}
[ -f "$build/CTestTestfile.cmake" ] || { echo "no ctest build in $build" >&2; exit 2; }
reports=$build/tests/sanitizer-reports
logs=$(mktemp -d)
echo "chaos test on $build, $runs runs; logs in $logs"
passed=0
for i in $(seq 1 "$runs"); do
  rm -rf "$reports"
  mkdir -p "$reports"
  log=$logs/run-$i.log
  status=0
  (cd "$build" && ctest -R '^chaos$' -V --timeout 2700) > "$log" 2>&1 || status=$?
  found=$(find "$reports" -type f | wc -l)
  [ "$found" = 0 ] || cp -r "$reports" "$logs/reports-$i"
  # The figures the test prints (ctest -V prefixes each line with "N: ").
  figure() { grep -o "$1" "$log" | tail -1 || true; }
  checks=$(grep -c '^[0-9]*: PASS' "$log" || true)
  failed=$(grep -c '^[0-9]*: FAIL' "$log" || true)
  verdict=FAIL
  if [ "$status" = 0 ] && [ "$failed" = 0 ] && [ "$found" = 0 ]; then
    verdict=pass
    passed=$((passed + 1))
  fi
  echo "run $i $verdict: $checks checks passed, $failed failed, $found sanitizer reports"
  echo "  $(figure 'requests=[0-9]*') $(figure 'outcomes: .*')"
  echo "  $(figure 'actor kills=[0-9]*') $(figure 'downstream kills=[0-9]*') $(figure 'restarts=[0-9]* escalations=[0-9]*')"
  echo "  $(figure 'fault_count: .*')"
  grep '^[0-9]*: FAIL' "$log" | sed 's/^[0-9]*: /       /' || true
done
echo "$passed/$runs runs passed"
[ "$passed" = "$runs" ]
