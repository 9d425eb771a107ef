#!/usr/bin/env bash
# Installs, builds and starts Bulwark on its embedded default config:
# Streamable HTTP on 127.0.0.1:8080/mcp with the built-in tools.
# Extra arguments go to the server (see `bulwark --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBULWARK_TESTS=OFF > /dev/null
ninja -C build -j2 bulwark
exec build/bulwark "$@"
