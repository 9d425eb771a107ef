#!/usr/bin/env bash
# Side-by-side benchmark: bulwark's real actor path against the echo ceiling.
#
#   bash tools/bench.sh [BUILD_DIR] [ROUNDS] [SECONDS]
#
# Starts `bulwark-echo` and `bulwark` (embedded defaults) on loopback, both
# pinned to the last CPU, and drives them with `bulwark-loadgen` pinned to the
# first CPU (8 keep-alive connections), alternating echo and bulwark ROUNDS
# times per era so that machine noise hits both alike. Prints every run, the
# median ratio per era, p99 at half of bulwark's saturating load (measured
# from each request's due time, with the share sent behind schedule), and
# the idle server's CPU use. Every process it starts is stopped by pid on exit.
set -euo pipefail

build=${1:-build}
rounds=${2:-5}
seconds=${3:-3}
conns=8

. "$(dirname "$0")/bench-common.sh"

"${pin_server[@]}" "$build/bulwark-echo" --port 0 >"$tmp/echo.out" 2>&1 &
echo_pid=$!
pids+=("$echo_pid")
"${pin_server[@]}" "$build/bulwark" --port 0 >"$tmp/bulwark.out" 2>&1 &
bulwark_pid=$!
pids+=("$bulwark_pid")

wait_port() { # FILE PATTERN
  for _ in $(seq 1 100); do
    local p
    p=$(grep -o "$2[0-9]*" "$1" 2>/dev/null | head -1 | grep -o '[0-9]*$' || true)
    if [ -n "$p" ]; then echo "$p"; return 0; fi
    sleep 0.05
  done
  echo "server did not report its port: $1" >&2
  return 1
}
echo_port=$(wait_port "$tmp/echo.out" '"listening":')
bulwark_port=$(wait_port "$tmp/bulwark.out" '"port":')


run() { # PORT ERA [extra]
  local port=$1 era=$2
  shift 2
  "${pin_client[@]}" "$build/bulwark-loadgen" --url "http://127.0.0.1:$port/mcp" \
    --connections "$conns" --duration "$seconds" --warmup 0.5 --era "$era" --op call "$@" 2>>"$tmp/loadgen.err" | tail -1
}


echo "bench: $rounds rounds x ${seconds}s, $conns connections, servers on CPU $server_cpu, loadgen on CPU $client_cpu"
for era in 2026 2025; do
  : >"$tmp/ratios.$era"
  : >"$tmp/bw.$era"
  for i in $(seq 1 "$rounds"); do
    e=$(run "$echo_port" "$era")
    b=$(run "$bulwark_port" "$era")
    er=$(echo "$e" | field rps)
    br=$(echo "$b" | field rps)
    echo "$((br * 1000 / er))" >>"$tmp/ratios.$era"
    echo "$br" >>"$tmp/bw.$era"
    printf 'era %s round %d  echo %6d req/s p50 %4s p99 %4s | bulwark %6d req/s p50 %4s p99 %4s p99.9 %5s | %d.%d%%\n' \
      "$era" "$i" "$er" "$(echo "$e" | field p50_us)" "$(echo "$e" | field p99_us)" \
      "$br" "$(echo "$b" | field p50_us)" "$(echo "$b" | field p99_us)" "$(echo "$b" | field p999_us)" \
      $((br * 100 / er)) $(((br * 1000 / er) % 10))
  done
  m=$(median <"$tmp/ratios.$era")
  echo "era $era: median bulwark/echo = $((m / 10)).$((m % 10))%"
done

# p99 at half of bulwark's median saturating rate (2026 era).
half=$(($(median <"$tmp/bw.2026") / 2))
h=$(run "$bulwark_port" 2026 --rate "$half")
echo "era 2026 at $half req/s (half load): p50 $(echo "$h" | field p50_us) us, p99 $(echo "$h" | field p99_us) us, p99.9 $(echo "$h" | field p999_us) us; $(behind "$h")"

# Idle CPU over 10 s.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
t0=$(ticks "$bulwark_pid")
sleep 10
t1=$(ticks "$bulwark_pid")
hz=$(getconf CLK_TCK)
echo "idle: $((t1 - t0)) CPU ticks in 10 s at $hz Hz = $(((t1 - t0) * 1000 / (10 * hz))) per mille of a core"
