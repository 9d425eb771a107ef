#!/usr/bin/env bash
# Installs, builds and runs the whole test suite (unit, conformance for both
# protocol eras, the official TypeScript SDK client over HTTP and stdio,
# hostile HTTP input) through ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh --tests
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_TESTS=ON > /dev/null
ninja -C build -j2
cd build
ctest --output-on-failure --timeout 900 "$@"
