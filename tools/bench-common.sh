# Shared by the benchmark scripts (sourced): a scratch directory, the pids of
# started processes (all stopped on exit), and small helpers.
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

# Servers run on the last CPU and load generators on the first (taskset
# prefixes; empty without taskset or with one CPU).
cpus=$(nproc)
server_cpu=$((cpus - 1))
client_cpu=0
pin_server=(taskset -c "$server_cpu")
pin_client=(taskset -c "$client_cpu")
if ! command -v taskset >/dev/null || [ "$cpus" -lt 2 ]; then
  pin_server=()
  pin_client=()
fi

# field NAME: the value of NAME=... in a load generator line on stdin (the
# whole name: p99_us is not lag_p99_us).
field() { grep -oE "(^| )$1=[0-9.]*" | head -1 | cut -d= -f2; }

# behind LINE: how well a paced (--rate) load generator run held its
# schedule, to print beside its latency: the share of the requests due that
# were not sent on time (sent >= 100 us late, or not at all; their latency
# counts from when they were due), its parts, and the send lag's p99.
behind() {
  printf 'behind %s%% (%s late + %s unsent of %s, lag p99 %s us)' "$(echo "$1" | field behind_pct)" \
    "$(echo "$1" | field behind)" "$(echo "$1" | field unsent)" "$(echo "$1" | field due)" \
    "$(echo "$1" | field lag_p99_us)"
}

# median: of the integers on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : int((a[NR/2]+a[NR/2+1])/2)}'; }

# launch LOG ARGS...: starts $build/bulwark in this shell (so that its pid is kept).
launch() {
  local log=$1
  shift
  "$build/bulwark" "$@" >/dev/null 2>"$log" &
  pids+=("$!")
}

# port_of LOG: waits for the listening line and prints the port.
port_of() {
  for _ in $(seq 1 300); do
    local p
    p=$(grep -o '"msg":"listening".*"port":[0-9]*' "$1" 2>/dev/null | grep -o '[0-9]*$' || true)
    if [ -n "$p" ]; then echo "$p"; return 0; fi
    sleep 0.05
  done
  echo "bulwark did not start: $(cat "$1")" >&2
  return 1
}

# buckets PORT FAMILY: the cumulative bucket counts of a histogram family on
# a server's /metrics (summed over its series), one "le count" line each.
buckets() {
  curl -s "http://127.0.0.1:$1/metrics" | awk -v fam="$2_bucket" '
    index($0, fam "{") == 1 {
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      if (!(le in n)) order[++k] = le
      n[le] += $NF
    }
    END { for (i = 1; i <= k; i++) print order[i], n[order[i]] }'
}

# quantile_us BEFORE AFTER Q: quantile Q (0..1) in microseconds of what a
# histogram gained between two `buckets` snapshots (BEFORE may be empty: the
# family had no series yet), interpolated within its bucket as Prometheus
# does; "-" when nothing was observed.
quantile_us() {
  awk -v q="$3" '
    FILENAME == ARGV[1] { before[$1] = $2; next }
    { le[++n] = $1; c[n] = $2 - before[$1] }
    END {
      total = c[n]
      if (n == 0 || total <= 0) { print "-"; exit }
      rank = q * total; lower = 0; below = 0
      for (i = 1; i <= n; i++) {
        if (c[i] >= rank && c[i] > below) {
          if (le[i] == "+Inf") { printf "%d\n", lower * 1e6 + 0.5; exit }
          printf "%d\n", (lower + (le[i] - lower) * (rank - below) / (c[i] - below)) * 1e6 + 0.5
          exit
        }
        lower = le[i]; below = c[i]
      }
    }' "$1" "$2"
}

# count_instructions BUILD PID OUT URL RATE: the instructions a server
# running under `valgrind --tool=callgrind --callgrind-out-file=OUT` (PID)
# spends per 2026-07-28 tools/call to URL: warmed up, then 8 s of calls at
# RATE/s minus an equally long idle stretch (timers and health checks).
# Stops the server.
count_instructions() {
  local b=$1 server=$2 out=$3 url=$4 rate=$5 line calls busy idle
  "$b/bulwark-loadgen" --url "$url" --connections 1 --duration 3 --warmup 1 --era 2026 --op call >/dev/null
  sleep 0.5
  callgrind_control -z "$server" >/dev/null
  line=$("$b/bulwark-loadgen" --url "$url" --connections 1 --duration 8 --warmup 0 --rate "$rate" --era 2026 --op call |
    tail -1)
  callgrind_control -d "$server" >/dev/null
  sleep 0.5
  callgrind_control -z "$server" >/dev/null
  sleep 8
  callgrind_control -d "$server" >/dev/null
  sleep 0.5
  kill "$server"
  wait "$server" 2>/dev/null || true
  calls=$(echo "$line" | field requests)
  busy=$(grep -h '^summary' "$out.1" | awk '{print $2}')
  idle=$(grep -h '^summary' "$out.2" | awk '{print $2}')
  echo $(((busy - idle) / calls))
}
