#!/usr/bin/env bash
# Installs what Bulwark needs on a Debian machine: the toolchain and
# libraries from Debian, and the test dependencies from tests/package-lock.json.
#   tools/install-deps.sh          build and run dependencies
#   tools/install-deps.sh --tests  also the npm packages the tests use, and
#                                  the browser (Debian's chromium) that the
#                                  admin page's test drives
set -euo pipefail
cd "$(dirname "$0")/.."
packages=(g++ cmake ninja-build pkg-config libcaf-dev libboost-dev libsimdjson-dev libspdlog-dev
          libssl-dev libmimalloc-dev libhiredis-dev libre2-dev libedit-dev catch2 ca-certificates)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
# Node only bootstraps npm here (the tests run on Node 22 from npm); keep a
# Node that is already installed, whatever its origin.
if [ "${1:-}" = "--tests" ] && ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi
# The admin page's test runs it in a headless chromium (through playwright-core,
# which uses this browser rather than downloading one); the fonts keep its
# screenshots legible.
if [ "${1:-}" = "--tests" ]; then
  # redis-server: the scale-out test shares state between instances through it.
  # haproxy: the fleet test balances three instances with deploy/haproxy.cfg.
  # prometheus (with promtool): the monitoring test checks deploy/prometheus/
  # and scrapes a server with it.
  # clang and its runtimes build the libFuzzer targets (tests/run.sh --stage fuzz);
  # clang-format checks that the sources are formatted (the `format` test).
  for p in chromium fonts-liberation bsdutils redis-server haproxy prometheus clang libclang-rt-14-dev clang-format; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
  done
fi
# Debian's slowhttptest drives the slowloris test.
if [ "${1:-}" = "--tests" ]; then
  dpkg -s slowhttptest >/dev/null 2>&1 || missing+=(slowhttptest)
fi
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "installing: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if [ "${1:-}" = "--tests" ]; then
  # npm ci only when the lockfile changed since the last install.
  stamp=tests/node_modules/.bulwark-lock
  if ! cmp -s tests/package-lock.json "$stamp" 2>/dev/null; then
    (cd tests && npm ci --no-audit --no-fund --loglevel=error)
    cp tests/package-lock.json "$stamp"
  fi
fi
