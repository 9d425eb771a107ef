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

# field NAME: the value of NAME=... in a load generator line on stdin.
field() { grep -o "$1=[0-9]*" | head -1 | cut -d= -f2; }

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
