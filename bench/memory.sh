#!/usr/bin/env bash
# `kefu up`'s resident memory with a firm's worth of data: N customers and N
# tickets created through the API (gRPC, 16 at a time), then a restart —
# how long until `kefu ready` (the live SLA view is built before it) and
# the memory after it. Embedded SQLite and in-memory SLA state; release build.
# Usage: bench/memory.sh [N=100000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-100000}
# shellcheck source=bench/common.sh
. bench/common.sh
work=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
port=$(free_port)
# One bench caller: lift the per-caller limit people have.
export KEFU_RATE_LIMIT_PER_CALLER=1000000 KEFU_LOG=warn
start() {
  : >"$work/up.out"
  "$kefu" up --data-dir "$work/data" --listen "127.0.0.1:$port" --admin-listen "127.0.0.1:$(free_port)" \
    --http-listen "127.0.0.1:$(free_port)" >"$work/up.out" 2>"$work/up.err" &
  pid=$!
  t0=$(date +%s.%N)
  for _ in $(seq 1 3000); do grep -q "kefu ready" "$work/up.out" && break; sleep 0.01; done
  grep -q "kefu ready" "$work/up.out" || { echo "kefu up did not start"; cat "$work/up.err"; exit 1; }
  ready=$(python3 -c "import time; print(f'{time.time() - $t0:.2f}')")
}
rss() { awk '/VmRSS/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status"; }
hwm() { awk '/VmHWM/{printf "%.1f MiB", $2/1024}' "/proc/$pid/status"; }
start
echo "== kefu up, empty: ready in ${ready} s, RSS $(rss)"
KEFU_BENCH_TOKEN=$("$kefu" admin token --role supervisor --staff-id bench --ttl 12h --data-dir "$work/data")
export KEFU_BENCH_TOKEN
t0=$(date +%s)
"$load" seed "http://127.0.0.1:$port" "http://127.0.0.1:$port" "$n" "$n" "$work/ids"
echo "== after creating $n customers and $n tickets ($(($(date +%s) - t0)) s): RSS $(rss), peak $(hwm)"
kill "$pid"
wait "$pid" 2>/dev/null || true
start
grep "SLA" "$work/up.out" || true
echo "== restarted: ready in ${ready} s (live SLA view built before it), RSS $(rss), peak $(hwm)"
sleep 5
echo "== 5 s later: RSS $(rss)"
du -sh "$work/data" | awk '{print "== data directory: " $1}'
