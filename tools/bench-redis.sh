#!/usr/bin/env bash
# The cost of shared state: the same rate-limited `tools/call echo` on a
# `bulwark` that keeps its buckets in memory (local) and on one that keeps
# them in Redis (shared: one Lua script per call, pipelined on the Redis
# client's thread), side by side. Both servers have one per-caller tier (a
# limit far above the load, so every call is admitted and checked), so the
# difference is the limiter's path alone. Rounds alternate local and shared
# so that machine noise hits both alike; prints every run, the median
# saturating rate of each and their ratio, then p50/p99 of both at half of
# the shared path's saturating rate.
#
#   bash tools/bench-redis.sh [BUILD_DIR] [ROUNDS] [SECONDS] [REDIS_SERVER]
#
# Starts its own redis-server (no persistence) on a free loopback port.
# Every process it starts is stopped by pid on exit.
set -euo pipefail

build=${1:-build}
rounds=${2:-5}
seconds=${3:-3}
redis_server=${4:-redis-server}
conns=8
. "$(dirname "$0")/bench-common.sh"

# A loopback port nothing answers on.
free_port() {
  for _ in $(seq 1 50); do
    local p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  return 1
}

redis_port=$(free_port)
"$redis_server" --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=("$!")
for _ in $(seq 1 100); do
  grep -q 'Ready to accept connections' "$tmp/redis.log" && break
  sleep 0.05
done
grep -q 'Ready to accept connections' "$tmp/redis.log" || { echo "redis-server did not start: $(cat "$tmp/redis.log")" >&2; exit 1; }

limits='"rateLimits": { "tiers": { "bench": { "perSecond": 100000000 } }, "anonymousTier": "bench" }'
echo "{ $limits }" >"$tmp/local.json"
echo "{ $limits, \"redis\": { \"url\": \"redis://127.0.0.1:$redis_port/0\", \"keyPrefix\": \"bench-$$:\" } }" >"$tmp/shared.json"
launch "$tmp/local.log" --config "$tmp/local.json" --port 0
local_port=$(port_of "$tmp/local.log")
launch "$tmp/shared.log" --config "$tmp/shared.json" --port 0
shared_port=$(port_of "$tmp/shared.log")
for _ in $(seq 1 100); do
  grep -q 'redis reachable' "$tmp/shared.log" && break
  sleep 0.05
done
grep -q 'redis reachable' "$tmp/shared.log" || { echo "the shared instance did not reach Redis" >&2; exit 1; }

run() { # PORT [extra loadgen args]
  local port=$1
  shift
  "$build/bulwark-loadgen" --url "http://127.0.0.1:$port/mcp" --connections "$conns" --duration "$seconds" \
    --warmup 0.5 --era 2026 --op call --tool echo --args '{"text":"hi"}' "$@" 2>>"$tmp/loadgen.err" | tail -1
}

echo "bench-redis: $rounds rounds x ${seconds}s, $conns connections, rate-limited tools/call echo"
: >"$tmp/local.rps"
: >"$tmp/shared.rps"
for i in $(seq 1 "$rounds"); do
  l=$(run "$local_port" --label local)
  s=$(run "$shared_port" --label shared)
  echo "round $i  $l"
  echo "round $i  $s"
  echo "$l" | field rps >>"$tmp/local.rps"
  echo "$s" | field rps >>"$tmp/shared.rps"
done
local_med=$(median <"$tmp/local.rps")
shared_med=$(median <"$tmp/shared.rps")
awk -v l="$local_med" -v s="$shared_med" 'BEGIN {
  printf "saturation (median): local %d req/s, shared %d req/s, shared/local %.3f\n", l, s, s / l }'

half=$((shared_med / 2))
l=$(run "$local_port" --rate "$half" --label local-half)
s=$(run "$shared_port" --rate "$half" --label shared-half)
echo "at $half req/s  $l"
echo "at $half req/s  $s"
awk -v a="$(echo "$l" | field p50_us)" -v b="$(echo "$s" | field p50_us)" \
    -v c="$(echo "$l" | field p99_us)" -v d="$(echo "$s" | field p99_us)" 'BEGIN {
  printf "at half load: p50 local %d us, shared %d us (+%d); p99 local %d us, shared %d us (+%d)\n", a, b, b - a, c, d, d - c }'
echo "at half load, schedule: local $(behind "$l"); shared $(behind "$s")"
echo "redis commands sent by the shared instance: $(curl -s "http://127.0.0.1:$shared_port/health" | grep -o '"sent":[0-9]*' | head -1 | cut -d: -f2)"
