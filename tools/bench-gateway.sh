#!/usr/bin/env bash
# What the gateway adds: `tools/call echo` made directly to a downstream
# `bulwark`, and the same call made through a front `bulwark` whose only
# service is that downstream over HTTP (2026-07-28 on both legs), whose path
# holds the priority queue and the breaker; and through a second front with
# the rate limiter on the path too (every level configured, none refusing).
#
#   bash tools/bench-gateway.sh [BUILD_DIR] [ROUNDS] [SECONDS] [SPIN_MICROS]
#
# SPIN_MICROS sets `actors.spinMicros` on the gateway (default 0); the
# downstream, the same on every path, keeps the default.
#
# Finds the gateway path's saturating rate (closed loop, 8 connections), then
# runs the paths at half of it, alternating ROUNDS times, and prints p50 and
# p99 of each and their differences (medians over the rounds). A fourth path
# goes through `bulwark-tcp-relay`, a bare byte relay in front of the same
# downstream: what it adds is the floor for any gateway on this machine (one
# more loopback hop), and the gateway's figure beyond it is Bulwark's own
# work. Every process it starts is stopped by pid on exit.
#
# Two more lines help read the tail. How much of each path's run the load
# generator spent behind its schedule (a stall anywhere on the machine makes
# it catch up, and calls sent back to back queue; their latency counts from
# when they were due, so the wait is in p99). And the gateways' own
# histograms over the rounds: a call's time inside Bulwark
# (bulwark_gateway_overhead_seconds) and its wait on the downstream
# (bulwark_upstream_duration_seconds, which includes the loopback hops and
# the wait for the gateway's thread to pick the answer up).
set -euo pipefail

build=${1:-build}
rounds=${2:-5}
seconds=${3:-3}
spin=${4:-0}
. "$(dirname "$0")/bench-common.sh"

echo "{}" >"$tmp/down.json"
launch "$tmp/down.log" --config "$tmp/down.json" --port 0
down_port=$(port_of "$tmp/down.log")
cat >"$tmp/front.json" <<JSON
{ "actors": { "spinMicros": $spin },
  "mcpServers": { "down": { "url": "http://127.0.0.1:$down_port/mcp" } },
  "gateway": { "prefix": "never" } }
JSON
launch "$tmp/front.log" --config "$tmp/front.json" --no-builtin-tools --port 0
front_port=$(port_of "$tmp/front.log")
# The same gateway with the rate limiter on the path at every level (the
# caller's tier, the service's budget, the global budget), none refusing.
cat >"$tmp/admitted.json" <<JSON
{ "actors": { "spinMicros": $spin },
  "mcpServers": { "down": { "url": "http://127.0.0.1:$down_port/mcp" } },
  "services": { "down": { "ratePerMinute": 100000000 } },
  "gateway": { "prefix": "never" },
  "rateLimits": { "tiers": { "bench": { "perSecond": 1000000000 } }, "anonymousTier": "bench",
                  "global": { "perSecond": 1000000000 } } }
JSON
launch "$tmp/admitted.log" --config "$tmp/admitted.json" --no-builtin-tools --port 0
admitted_port=$(port_of "$tmp/admitted.log")
"$build/bulwark-tcp-relay" --to "127.0.0.1:$down_port" >"$tmp/relay.out" 2>&1 &
pids+=("$!")
relay_port=
for _ in $(seq 1 100); do
  relay_port=$(grep -o '"listening":[0-9]*' "$tmp/relay.out" 2>/dev/null | cut -d: -f2 || true)
  [ -n "$relay_port" ] && break
  sleep 0.05
done
[ -n "$relay_port" ] || { echo "bulwark-tcp-relay did not start: $(cat "$tmp/relay.out")" >&2; exit 1; }

run() { # PORT [extra]
  local port=$1
  shift
  "$build/bulwark-loadgen" --url "http://127.0.0.1:$port/mcp" --connections 8 --duration "$seconds" \
    --warmup 0.5 --era 2026 --op call "$@" 2>>"$tmp/loadgen.err" | tail -1
}

sat=$(run "$front_port" | field rps)
direct_sat=$(run "$down_port" | field rps)
half=$((sat / 2))
echo "saturation (closed loop, 8 connections): through the gateway $sat req/s, direct $direct_sat req/s"
echo "all paths at $half req/s, $rounds rounds x ${seconds}s, gateway spinMicros $spin:"
# Bulwark's own view of the measured calls: both gateways' histograms
# before (snapshot 0) and after (snapshot 1) the rounds.
snapshot() {
  local f port
  for f in front admitted; do
    port=$front_port
    [ "$f" = admitted ] && port=$admitted_port
    buckets "$port" bulwark_gateway_overhead_seconds >"$tmp/$f.own.$1"
    buckets "$port" bulwark_upstream_duration_seconds >"$tmp/$f.up.$1"
  done
}
snapshot 0
for i in $(seq 1 "$rounds"); do
  d=$(run "$down_port" --rate "$half")
  r=$(run "$relay_port" --rate "$half")
  g=$(run "$front_port" --rate "$half")
  a=$(run "$admitted_port" --rate "$half")
  for k in p50_us p99_us behind_pct; do
    echo "$(echo "$d" | field "$k")" >>"$tmp/direct.$k"
    echo "$(echo "$r" | field "$k")" >>"$tmp/relay.$k"
    echo "$(echo "$g" | field "$k")" >>"$tmp/gateway.$k"
    echo "$(echo "$a" | field "$k")" >>"$tmp/admitted.$k"
  done
  printf 'round %d  direct p50 %4s p99 %5s behind %5s%% | relay p50 %4s p99 %5s behind %5s%% | gateway p50 %4s p99 %5s behind %5s%% | + limiter p50 %4s p99 %5s behind %5s%%\n' "$i" \
    "$(echo "$d" | field p50_us)" "$(echo "$d" | field p99_us)" "$(echo "$d" | field behind_pct)" \
    "$(echo "$r" | field p50_us)" "$(echo "$r" | field p99_us)" "$(echo "$r" | field behind_pct)" \
    "$(echo "$g" | field p50_us)" "$(echo "$g" | field p99_us)" "$(echo "$g" | field behind_pct)" \
    "$(echo "$a" | field p50_us)" "$(echo "$a" | field p99_us)" "$(echo "$a" | field behind_pct)"
  for x in "$d" "$r" "$g" "$a"; do
    echo "$x" | field unsent >>"$tmp/unsent"
  done
done
snapshot 1
for k in p50_us p99_us; do
  dm=$(median <"$tmp/direct.$k")
  rm_=$(median <"$tmp/relay.$k")
  gm=$(median <"$tmp/gateway.$k")
  am=$(median <"$tmp/admitted.$k")
  echo "median $k: direct $dm, bare relay $rm_ (a hop adds $((rm_ - dm))), gateway $gm (added $((gm - dm)), $((gm - rm_)) beyond the hop), gateway + limiter $am (limiter adds $((am - gm)))"
done
# behind_pct has two decimals; median wants integers: compare in hundredths.
median_pct() { sed 's/\.//; s/^0*\([0-9]\)/\1/' "$1" | median | awk '{printf "%.2f", $1 / 100}'; }
echo "behind schedule (median share of the requests due that were sent >= 100 us late or not at all;" \
  "their latency counts from when they were due): direct $(median_pct "$tmp/direct.behind_pct")%," \
  "bare relay $(median_pct "$tmp/relay.behind_pct")%, gateway $(median_pct "$tmp/gateway.behind_pct")%," \
  "gateway + limiter $(median_pct "$tmp/admitted.behind_pct")%; unsent in all rounds: $(awk '{s += $1} END {print s + 0}' "$tmp/unsent")"
echo "inside the gateway, over all rounds (its /metrics; bucket-interpolated):"
for f in front admitted; do
  name=gateway
  [ "$f" = admitted ] && name="gateway + limiter"
  echo "  $name: own time p50 $(quantile_us "$tmp/$f.own.0" "$tmp/$f.own.1" 0.5) us," \
    "p99 $(quantile_us "$tmp/$f.own.0" "$tmp/$f.own.1" 0.99) us; waiting on the downstream" \
    "p50 $(quantile_us "$tmp/$f.up.0" "$tmp/$f.up.1" 0.5) us, p99 $(quantile_us "$tmp/$f.up.0" "$tmp/$f.up.1" 0.99) us"
done
