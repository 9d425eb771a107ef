#!/usr/bin/env bash
# Priority under overload: a downstream whose tool takes SERVICE_MS per call
# sits behind a front `bulwark` that runs at most CONCURRENCY calls to it at
# once (so it serves about CONCURRENCY * 1000 / SERVICE_MS calls a second).
# HIGH traffic (a key with priority high) runs alone, then beside LOW traffic
# (a key with priority low) offered at 3x that capacity over 512 connections,
# in two layouts: LOW from the same address as HIGH (127.0.0.1: callers of
# several tenants on one host) and LOW from another one (127.0.0.2). Prints,
# per layout, HIGH's p50/p99 unloaded and under overload (and their ratio),
# how many HIGH calls failed (refused ones included: a latency over the
# calls that got through hides nothing), what became of the LOW calls, and
# the front's resident memory before, during and after. Exits 1 when any
# HIGH call failed.
#
#   bash tools/bench-overload.sh [BUILD_DIR] [SECONDS] [SERVICE_MS] [CONCURRENCY]
#
# Every process it starts is stopped by pid on exit.
set -euo pipefail

build=${1:-build}
seconds=${2:-5}
service_ms=${3:-10}
concurrency=${4:-4}
. "$(dirname "$0")/bench-common.sh"

rss_kib() { grep VmRSS "/proc/$1/status" | awk '{print $2}'; }
sha() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }

launch "$tmp/down.log" --fault-tools --no-builtin-tools --port 0
down_port=$(port_of "$tmp/down.log")
cat >"$tmp/front.json" <<JSON
{ "mcpServers": { "down": { "url": "http://127.0.0.1:$down_port/mcp" } },
  "services": { "down": { "timeoutMs": 2000, "retry": { "attempts": 1 } } },
  "gateway": { "prefix": "never" },
  "rateLimits": { "tiers": { "bench": { "perSecond": 1000000 } },
                  "keys": { "$(sha high-key)": { "tier": "bench", "priority": "high" },
                            "$(sha low-key)": { "tier": "bench", "priority": "low" } } },
  "queue": { "capacity": 256, "maxConcurrentPerService": $concurrency } }
JSON
# start_front LAYOUT: a fresh front per layout, so that one layout's
# degraded mode or queue does not carry over into the other's numbers.
start_front() {
  launch "$tmp/front.$1.log" --config "$tmp/front.json" --no-builtin-tools --port 0
  front=${pids[-1]}
  front_port=$(port_of "$tmp/front.$1.log")
}

capacity=$((concurrency * 1000 / service_ms))
high_rate=$((capacity / 10))
low_rate=$((capacity * 3))
args="{\"key\":\"bench\",\"hangMs\":$service_ms}"
load() { # KEY RATE CONNECTIONS SOURCE (the load generator exits 1 when some calls failed: shed LOW work does)
  "$build/bulwark-loadgen" --url "http://127.0.0.1:$front_port/mcp" --era 2026 --op call --tool fault_count \
    --args "$args" --header "Authorization: Bearer $1" --rate "$2" --connections "$3" --bind "$4" \
    --duration "$seconds" --warmup 1 2>>"$tmp/loadgen.err" >"$tmp/$1.$2.$4.out" || true
  tail -1 "$tmp/$1.$2.$4.out"
}
# failed LINE: calls of a load generator line that got no successful answer
# (errors in the window, and connections that could not even be set up).
failed() {
  local e s
  e=$(echo "$1" | field errors || true)
  s=$(echo "$1" | field setup_errors || true)
  echo $((${e:-0} + ${s:-0}))
}

echo "service: ${service_ms} ms per call, ${concurrency} at once -> capacity ~${capacity}/s"
status=0
high_failed=0
for layout in same different; do
  low_from=127.0.0.1
  [ "$layout" = different ] && low_from=127.0.0.2
  echo "-- LOW from $low_from, HIGH from 127.0.0.1 ($layout address), a fresh front"
  start_front "$layout"
  rss0=$(rss_kib "$front")
  alone=$(load high-key "$high_rate" 16 127.0.0.1)
  echo "HIGH alone           ($high_rate/s): $alone"
  p50a=$(echo "$alone" | field p50_us || true); p99a=$(echo "$alone" | field p99_us || true)
  high_failed=$((high_failed + $(failed "$alone")))
  load low-key "$low_rate" 512 "$low_from" >"$tmp/low.out" &
  low_pid=$!
  sleep 0.5
  busy=$(load high-key "$high_rate" 16 127.0.0.1)
  rss1=$(rss_kib "$front")
  wait "$low_pid" || true
  echo "HIGH under 3x        ($high_rate/s): $busy"
  echo "LOW at 3x capacity ($low_rate/s): $(cat "$tmp/low.out")"
  sleep 1
  rss2=$(rss_kib "$front")
  p50b=$(echo "$busy" | field p50_us || true); p99b=$(echo "$busy" | field p99_us || true)
  calls=$(echo "$busy" | field requests || true)
  refused=$(failed "$busy")
  high_failed=$((high_failed + refused))
  awk -v a="$p99a" -v b="$p99b" -v c="$p50a" -v d="$p50b" -v l="$layout" -v n="$calls" -v f="$refused" 'BEGIN {
    printf "%s address: HIGH failed or refused %d of %d calls (target 0: %s)\n", l, f, n, (f == 0 && n > 0) ? "met" : "MISSED"
    if (a > 0 && b > 0)
      printf "%s address: HIGH p50 %d -> %d us (x%.2f), p99 %d -> %d us (x%.2f; target <= x2: %s)\n", l, c, d, d / c, a, b, b / a, (b <= 2 * a) ? "met" : "MISSED"
    else
      printf "%s address: HIGH has no latency (no call succeeded)\n", l }'
  echo "$layout address: schedule: HIGH alone $(behind "$alone"); HIGH under 3x $(behind "$busy"); LOW $(behind "$(cat "$tmp/low.out")")"
  echo "front RSS: ${rss0} KiB idle, ${rss1} KiB under overload, ${rss2} KiB after"
  kill "$front"
  wait "$front" 2>/dev/null || true
  [ "$refused" -eq 0 ] && [ "${calls:-0}" -gt 0 ] || status=1
done
[ "$high_failed" -eq 0 ] || status=1
if [ "$status" -ne 0 ]; then
  echo "FAILED: HIGH calls were refused or failed ($high_failed in all)"
fi
exit "$status"
