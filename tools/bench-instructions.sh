#!/usr/bin/env bash
# Instructions the front `bulwark` runs per gateway `tools/call`, counted by
# callgrind: unlike a timing, the count is the same whatever else the machine
# is doing, so it compares two builds on a busy host.
#
#   bash tools/bench-instructions.sh [BUILD_DIR] [BASELINE_BUILD_DIR]
#
# Starts a downstream `bulwark` and a front whose only service is that
# downstream over HTTP (2026-07-28 on both legs), runs the front under
# `valgrind --tool=callgrind`, warms it up, then counts the instructions of
# 400 calls at 50/s and subtracts an equally long idle stretch (timers and
# health checks). It measures the front a second time with the rate limiter
# on the path at every level (none refusing) and prints what the limiter
# adds. With a baseline build dir it measures that too and prints the ratio.
# Every process it starts is stopped by pid on exit.
set -euo pipefail

build=${1:-build}
baseline=${2:-}
. "$(dirname "$0")/bench-common.sh"
command -v valgrind >/dev/null || { echo "valgrind is not installed" >&2; exit 1; }

# The rate limiter at every level (the caller's tier, the service's budget,
# the global budget), none refusing.
limits='"services": { "down": { "ratePerMinute": 100000000 } },
  "rateLimits": { "tiers": { "bench": { "perSecond": 1000000000 } }, "anonymousTier": "bench",
                  "global": { "perSecond": 1000000000 } },'

# measure BUILD [EXTRA_CONFIG]: prints the instructions per call.
measure() {
  local b=$1 extra=${2:-} log=$tmp/m.$RANDOM
  "$b/bulwark" --port 0 >/dev/null 2>"$log.down" &
  local down=$!
  pids+=("$down")
  local down_port
  down_port=$(port_of "$log.down")
  echo "{ $extra \"mcpServers\": { \"down\": { \"url\": \"http://127.0.0.1:$down_port/mcp\" } }, \"gateway\": { \"prefix\": \"never\" } }" \
    >"$log.json"
  valgrind --tool=callgrind --callgrind-out-file="$log.out" \
    "$b/bulwark" --config "$log.json" --no-builtin-tools --port 0 >/dev/null 2>"$log.front" &
  local front=$!
  pids+=("$front")
  local front_port
  front_port=$(port_of "$log.front")
  count_instructions "$b" "$front" "$log.out" "http://127.0.0.1:$front_port/mcp" 50
  kill "$down"
  wait "$down" 2>/dev/null || true
}

n=$(measure "$build")
echo "front instructions per gateway call: $n ($build)"
l=$(measure "$build" "$limits")
echo "with the rate limiter at every level: $l (the limiter adds $((l - n)))"
if [ -n "$baseline" ]; then
  b=$(measure "$baseline")
  echo "front instructions per gateway call: $b ($baseline, baseline)"
  awk -v n="$n" -v b="$b" 'BEGIN { printf "ratio: %.3f\n", n / b }'
fi
