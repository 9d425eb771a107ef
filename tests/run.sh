#!/usr/bin/env bash
# Installs, builds and runs the whole test suite (unit, conformance for both
# protocol eras, the official TypeScript SDK client over HTTP and stdio,
# hostile HTTP input) through ctest; then the same tests once more on a build
# with AddressSanitizer and UndefinedBehaviorSanitizer, and each libFuzzer
# target for a bounded time.
#   tests/run.sh [--stage all|test|sanitize|fuzz] [CTEST ARGS...]
#     test      build/       the normal build and ctest
#     sanitize  build-asan/  -DBULWARK_SANITIZE=ON (g++) and ctest; fails on
#                            any sanitizer report, also from servers a test killed
#     fuzz      build-fuzz/  -DBULWARK_FUZZ=ON (clang++), each target for
#                            BULWARK_FUZZ_SECONDS (default 60) seconds
#   all (the default) runs the three in this order and stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."
stage=all
if [ "${1:-}" = "--stage" ]; then
  stage=${2:?--stage needs all, test, sanitize or fuzz}
  shift 2
fi
case $stage in all|test|sanitize|fuzz) ;; *) echo "unknown stage: $stage" >&2; exit 2 ;; esac
tools/install-deps.sh --tests

# The suite cannot shrink unnoticed: the build registers exactly the tests
# tests/expected-tests.txt names (checked before the run), and a run without
# a filter must run them all (checked after it, from ctest's own count).
check_registered() {
  local dir=$1
  local registered
  registered=$(cd "$dir" && ctest -N | sed -n 's/^ *Test *#[0-9]*: //p' | sort)
  local expected
  expected=$(grep -v '^#' tests/expected-tests.txt | sort)
  if [ "$registered" != "$expected" ]; then
    echo "the tests registered in $dir differ from tests/expected-tests.txt:" >&2
    diff <(echo "$expected") <(echo "$registered") >&2 || true
    return 1
  fi
}

# Runs ctest once in DIR with TIMEOUT and the rest of the arguments (no
# --repeat: a test that fails once fails the stage); without arguments of the
# caller's (a filter), fails unless every expected test ran.
run_ctest() {
  local dir=$1 timeout=$2
  shift 2
  local options=(--output-on-failure --timeout "$timeout")
  local log
  log=$(mktemp)
  set +e
  (cd "$dir" && ctest "${options[@]}" "$@") 2>&1 | tee "$log"
  local status=${PIPESTATUS[0]}
  set -e
  if [ "$status" = 0 ] && [ $# = 0 ]; then
    local want ran
    want=$(grep -vc '^#' tests/expected-tests.txt)
    ran=$(sed -n 's/.* tests failed out of \([0-9]*\)$/\1/p' "$log" | tail -1)
    if [ "$ran" != "$want" ]; then
      echo "ctest ran ${ran:-no} tests; tests/expected-tests.txt names $want" >&2
      status=1
    fi
  fi
  rm -f "$log"
  return "$status"
}

run_test() {
  cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_TESTS=ON -DBULWARK_WERROR=ON > /dev/null
  ninja -C build -j2
  check_registered build
  run_ctest build 900 "$@"
}

run_sanitize() {
  # g++, like Debian's CAF, Boost, simdjson and spdlog: one C++ runtime.
  # (CXX is read when the build directory is first configured.)
  CXX=g++ cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_TESTS=ON \
    -DBULWARK_SANITIZE=ON > /dev/null
  ninja -C build-asan -j2
  local reports=build-asan/tests/sanitizer-reports
  rm -rf "$reports"
  mkdir -p "$reports"
  local status=0
  # One run, no retry: a bound that must stretch under the sanitizers'
  # slowdown scales by BULWARK_TEST_TIME_SCALE in the test itself.
  check_registered build-asan
  run_ctest build-asan 2700 "$@" || status=$?
  if compgen -G "$reports/*" > /dev/null; then
    echo "sanitizer reports (build-asan, from the tests or the processes they started):" >&2
    for f in "$reports"/*; do
      echo "== $f" >&2
      head -80 "$f" >&2
    done
    status=1
  fi
  return $status
}

run_fuzz() {
  CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_TESTS=OFF \
    -DBULWARK_FUZZ=ON > /dev/null
  ninja -C build-fuzz -j2 fuzz_codec fuzz_http
  tests/fuzz/run.sh build-fuzz "${BULWARK_FUZZ_SECONDS:-60}"
}

timed() {
  local name=$1
  shift
  local start=$SECONDS
  echo "== stage $name"
  "$@"
  echo "== stage $name passed in $((SECONDS - start)) s"
}

case $stage in
  test) timed test run_test "$@" ;;
  sanitize) timed sanitize run_sanitize "$@" ;;
  fuzz) timed fuzz run_fuzz ;;
  all)
    timed test run_test "$@"
    timed sanitize run_sanitize "$@"
    timed fuzz run_fuzz
    ;;
esac
