#!/usr/bin/env bash
# Priority under overload: a downstream whose tool takes SERVICE_MS per call
# sits behind a front `bulwark` that runs at most CONCURRENCY calls to it at
# once (so it serves about CONCURRENCY * 1000 / SERVICE_MS calls a second).
# HIGH traffic (a key with priority high) runs alone, then beside LOW traffic
# (a key with priority low) offered at 3x that capacity. Prints HIGH's p50/p99
# unloaded and under overload (and their ratio), what became of the LOW calls,
# and the front's resident memory before, during and after.
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
launch "$tmp/front.log" --config "$tmp/front.json" --no-builtin-tools --port 0
front=${pids[-1]}
front_port=$(port_of "$tmp/front.log")

capacity=$((concurrency * 1000 / service_ms))
high_rate=$((capacity / 10))
low_rate=$((capacity * 3))
args="{\"key\":\"bench\",\"hangMs\":$service_ms}"
load() { # KEY RATE CONNECTIONS (the load generator exits 1 when some calls failed: shed LOW work does)
  "$build/bulwark-loadgen" --url "http://127.0.0.1:$front_port/mcp" --era 2026 --op call --tool fault_count \
    --args "$args" --header "Authorization: Bearer $1" --rate "$2" --connections "$3" \
    --duration "$seconds" --warmup 1 2>>"$tmp/loadgen.err" >"$tmp/$1.$2.out" || true
  tail -1 "$tmp/$1.$2.out"
}

echo "service: ${service_ms} ms per call, ${concurrency} at once -> capacity ~${capacity}/s"
rss0=$(rss_kib "$front")
alone=$(load high-key "$high_rate" 16)
echo "HIGH alone        ($high_rate/s): $alone"
load low-key "$low_rate" 512 >"$tmp/low.out" &
low_pid=$!
sleep 0.5
busy=$(load high-key "$high_rate" 16)
rss1=$(rss_kib "$front")
wait "$low_pid" || true
echo "HIGH under 3x     ($high_rate/s): $busy"
echo "LOW at 3x capacity ($low_rate/s): $(cat "$tmp/low.out")"
sleep 1
rss2=$(rss_kib "$front")
p50a=$(echo "$alone" | field p50_us); p99a=$(echo "$alone" | field p99_us)
p50b=$(echo "$busy" | field p50_us); p99b=$(echo "$busy" | field p99_us)
awk -v a="$p99a" -v b="$p99b" -v c="$p50a" -v d="$p50b" 'BEGIN {
  printf "HIGH p50 %d -> %d us (x%.2f), p99 %d -> %d us (x%.2f; target <= x2)\n", c, d, d / c, a, b, b / a }'
echo "schedule: HIGH alone $(behind "$alone"); HIGH under 3x $(behind "$busy"); LOW $(behind "$(cat "$tmp/low.out")")"
echo "front RSS: ${rss0} KiB idle, ${rss1} KiB under overload, ${rss2} KiB after"
