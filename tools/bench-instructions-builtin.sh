#!/usr/bin/env bash
# Instructions `bulwark` runs per built-in `tools/call` (2026-07-28, the
# `echo` tool), counted by callgrind like tools/bench-instructions.sh counts
# a gateway call: the same whatever else the machine is doing. Measures the
# server on its embedded defaults, with the access log to a file, and with
# every trace recorded (`telemetry.sampleRatio` 1) and exported to a live
# OTLP receiver (a Node server answering 200).
#
#   bash tools/bench-instructions-builtin.sh [BUILD_DIR] [BASELINE_BUILD_DIR]
#
# With a baseline build dir it measures that one's defaults too and prints
# the ratio. Every process it starts is stopped by pid on exit.
set -euo pipefail

build=${1:-build}
baseline=${2:-}
. "$(dirname "$0")/bench-common.sh"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }
node=$(dirname "$0")/../tests/node_modules/.bin/node
[ -x "$node" ] || node=$(command -v node) || { echo "node is needed for the OTLP receiver" >&2; exit 1; }

# measure BUILD [ARGS...]: prints the instructions per call.
measure() {
  local b=$1 log=$tmp/m.$RANDOM
  shift
  valgrind --tool=callgrind --callgrind-out-file="$log.out" "$b/bulwark" --port 0 "$@" >/dev/null 2>"$log.err" &
  local server=$!
  pids+=("$server")
  local port
  port=$(port_of "$log.err")
  count_instructions "$b" "$server" "$log.out" "http://127.0.0.1:$port/mcp" 100
}

cat >"$tmp/receiver.mjs" <<'JS'
import { createServer } from 'node:http';
const s = createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
});
s.listen(0, '127.0.0.1', () => console.log(`{"msg":"listening","port":${s.address().port}}`));
JS
"$node" "$tmp/receiver.mjs" >"$tmp/receiver.out" 2>&1 &
pids+=("$!")
receiver=$(port_of "$tmp/receiver.out")
echo "{ \"log\": { \"access\": \"$tmp/access.log\" } }" >"$tmp/logged.json"
echo "{ \"telemetry\": { \"otlp\": { \"endpoint\": \"http://127.0.0.1:$receiver\" }, \"sampleRatio\": 1 } }" \
  >"$tmp/traced.json"

n=$(measure "$build")
echo "instructions per built-in call: $n ($build)"
l=$(measure "$build" --config "$tmp/logged.json")
echo "with the access log: $l (+$((l - n)))"
t=$(measure "$build" --config "$tmp/traced.json")
echo "with every trace exported: $t (+$((t - n)))"
if [ -n "$baseline" ]; then
  b=$(measure "$baseline")
  echo "instructions per built-in call: $b ($baseline, baseline)"
  awk -v n="$n" -v b="$b" 'BEGIN { printf "ratio: %.3f\n", n / b }'
fi
