#!/usr/bin/env bash
# What traces and the access log cost, side by side in one run.
#
#   bash tools/bench-telemetry.sh [BUILD_DIR] [ROUNDS] [SECONDS]
#
# Starts three `bulwark`s on their embedded defaults, pinned to the last
# CPU: one plain, one that records every trace (`telemetry.sampleRatio` 1)
# and exports it to a live OTLP receiver (a small Node server answering 200,
# unpinned), and one that writes the access log to a
# file. `bulwark-loadgen` (first CPU, 8 keep-alive connections, 2026-07-28
# tools/call) drives them in turn, ROUNDS times, rotating the order so that
# machine noise hits each alike. Prints every run, the median ratios
# traced/plain and logged/plain, what the receiver got and what the traced
# server dropped. Every process it starts is stopped by pid on exit.
set -euo pipefail

build=${1:-build}
rounds=${2:-5}
seconds=${3:-3}
conns=8
node=$(dirname "$0")/../tests/node_modules/.bin/node
[ -x "$node" ] || node=$(command -v node) || { echo "node is needed for the OTLP receiver" >&2; exit 1; }

. "$(dirname "$0")/bench-common.sh"

# The receiver: reads each export and answers 200, as a collector does
# before it processes what it queued. It runs unpinned: on two cores no
# place is neutral, and the scheduler puts it where there is room.
cat >"$tmp/receiver.mjs" <<'JS'
import { createServer } from 'node:http';
let bytes = 0, exports = 0;
const s = createServer((req, res) => {
  req.on('data', (c) => (bytes += c.length));
  req.on('end', () => {
    if (req.url === '/count') return res.end(`${exports} ${bytes}`);
    exports++;
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
  });
});
s.listen(0, '127.0.0.1', () => console.log(`{"msg":"listening","port":${s.address().port}}`));
JS
"$node" "$tmp/receiver.mjs" >"$tmp/receiver.out" 2>&1 &
pids+=("$!")
receiver=$(port_of "$tmp/receiver.out")

echo "{ \"telemetry\": { \"otlp\": { \"endpoint\": \"http://127.0.0.1:$receiver\" }, \"sampleRatio\": 1 } }" >"$tmp/traced.json"
echo "{ \"log\": { \"access\": \"$tmp/access.log\" } }" >"$tmp/logged.json"
start() { # NAME [ARGS...]
  local name=$1
  shift
  "${pin_server[@]}" "$build/bulwark" --port 0 "$@" >/dev/null 2>"$tmp/$name.log" &
  pids+=("$!")
}
start plain
start traced --config "$tmp/traced.json"
start logged --config "$tmp/logged.json"
declare -A port
for n in plain traced logged; do port[$n]=$(port_of "$tmp/$n.log"); done

run() { # NAME
  "${pin_client[@]}" "$build/bulwark-loadgen" --url "http://127.0.0.1:${port[$1]}/mcp" \
    --connections "$conns" --duration "$seconds" --warmup 0.5 --era 2026 --op call 2>>"$tmp/loadgen.err" | tail -1
}

echo "bench-telemetry: $rounds rounds x ${seconds}s, $conns connections"
: >"$tmp/traced.ratio"
: >"$tmp/logged.ratio"
order=(plain traced logged)
for i in $(seq 1 "$rounds"); do
  declare -A rps=()
  for n in "${order[@]}"; do
    line=$(run "$n")
    rps[$n]=$(echo "$line" | field rps)
    printf 'round %d %-6s %6d req/s p50 %4s us p99 %4s us\n' "$i" "$n" "${rps[$n]}" "$(echo "$line" | field p50_us)" \
      "$(echo "$line" | field p99_us)"
  done
  echo "$((rps[traced] * 1000 / rps[plain]))" >>"$tmp/traced.ratio"
  echo "$((rps[logged] * 1000 / rps[plain]))" >>"$tmp/logged.ratio"
  order=("${order[@]:1}" "${order[0]}")
done
t=$(median <"$tmp/traced.ratio")
l=$(median <"$tmp/logged.ratio")
echo "median traced/plain = $((t / 10)).$((t % 10))% (tracing at ratio 1, exported live)"
echo "median logged/plain = $((l / 10)).$((l % 10))% (access log to a file)"
sleep 1.5 # the last batch
read -r exports bytes < <(curl -s "http://127.0.0.1:$receiver/count")
metric() { curl -s "http://127.0.0.1:${port[traced]}/metrics" | grep "^$1" | awk '{s += $2} END {print s + 0}'; }
echo "receiver: $exports exports, $((bytes / 1048576)) MiB; traced server exported $(metric bulwark_trace_spans_exported_total) spans, dropped $(metric bulwark_trace_spans_dropped_total); access log $(wc -l <"$tmp/access.log") lines"
