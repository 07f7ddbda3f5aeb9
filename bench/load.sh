#!/usr/bin/env bash
# kefu's request rates beside its datastores' own ceilings, measured side by
# side in one run: the three services as `kefu serve` processes (release
# build, PostgreSQL + Redis, loopback), driven by bench/src/load.rs, with
# pgbench and redis-benchmark in between, round after round. Prints every
# round, then each figure's median (min–max) and the ratios BENCHMARKS.md
# records. Needs PostgreSQL and Redis on 127.0.0.1 (as CI has).
# Usage: bench/load.sh [ROUNDS=3] [SECONDS=5] [CONCURRENCY=16]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
secs=${2:-5}
conc=${3:-16}
# shellcheck source=bench/common.sh
. bench/common.sh

echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
echo "== $rounds rounds of $secs s per figure, $conc concurrent"
pg="postgres://postgres@127.0.0.1:5432"
for db in kefu_bench_customers kefu_bench_tickets kefu_bench_gateway kefu_pgbench; do
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
done
redis-cli -h 127.0.0.1 -n 11 flushdb >/dev/null
work=$(mktemp -d)
eval "$("$kefu" admin keygen token --kid bench | sed 's/^/export /')"
eval "$("$kefu" admin keygen data --kid bench | sed 's/^/export /')"
eval "$("$kefu" admin keygen audit --kid bench | sed 's/^/export /')"
export KEFU_LOG=warn
# The bench is one caller: lift the per-caller limits people have.
export KEFU_RATE_LIMIT_PER_CALLER=1000000
KEFU_GATEWAY_DATABASE_URL="$pg/kefu_bench_gateway" "$kefu" migrate all --url customers="$pg/kefu_bench_customers" \
  --url tickets="$pg/kefu_bench_tickets" >/dev/null
pids=""
cleanup() {
  # shellcheck disable=SC2086
  [ -n "$pids" ] && kill $pids 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
c_port=$(free_port)
t_port=$(free_port)
g_port=$(free_port)
"$kefu" admin token --role service --staff-id kefu-tickets --ttl 2h >"$work/service.token"
KEFU_DATABASE_URL="$pg/kefu_bench_customers" "$kefu" serve customers --listen "127.0.0.1:$c_port" \
  --admin-listen "127.0.0.1:$(free_port)" >"$work/customers.log" 2>&1 &
pids="$!"
KEFU_DATABASE_URL="$pg/kefu_bench_tickets" KEFU_REDIS_URL=redis://127.0.0.1:6379/11 \
  KEFU_SERVICE_TOKEN_FILE="$work/service.token" KEFU_CUSTOMERS_ADDR="http://127.0.0.1:$c_port" \
  "$kefu" serve tickets --listen "127.0.0.1:$t_port" --admin-listen "127.0.0.1:$(free_port)" >"$work/tickets.log" 2>&1 &
pids="$pids $!"
# The bench's one caller would otherwise meet the per-caller REST limit.
KEFU_DATABASE_URL="$pg/kefu_bench_gateway" KEFU_CUSTOMERS_ADDR="http://127.0.0.1:$c_port" \
  KEFU_TICKETS_ADDR="http://127.0.0.1:$t_port" KEFU_RATE_LIMIT_PER_KEY=1000000 KEFU_RATE_LIMIT_PER_ADDR=1000000 \
  "$kefu" serve gateway --http-listen "127.0.0.1:$g_port" --admin-listen "127.0.0.1:$(free_port)" \
  >"$work/gateway.log" 2>&1 &
pids="$pids $!"
healthy() {
  "$kefu" health "127.0.0.1:$c_port" >/dev/null 2>&1 && "$kefu" health "127.0.0.1:$t_port" >/dev/null 2>&1 \
    && "$kefu" health --http "http://127.0.0.1:$g_port/healthz" >/dev/null 2>&1
}
for _ in $(seq 1 100); do healthy && break; sleep 0.2; done
healthy || { echo "the services did not come up:"; tail -n 20 "$work"/*.log; exit 1; }
KEFU_BENCH_TOKEN=$("$kefu" admin token --role supervisor --staff-id bench --ttl 2h)
export KEFU_BENCH_TOKEN
c="http://127.0.0.1:$c_port"
t="http://127.0.0.1:$t_port"
g="http://127.0.0.1:$g_port"
"$load" seed "$c" "$t" 200 1000 "$work/ids"

# The ceilings: a single-row insert like a ticket's, and pgbench's own
# primary-key select (-S) on its standard tables.
psql -q -h 127.0.0.1 -U postgres -d kefu_pgbench \
  -c "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, number TEXT, subject TEXT, customer_id TEXT, created_at BIGINT)"
echo "INSERT INTO t (number, subject, customer_id, created_at) VALUES (md5(random()::text), 'subject', md5(random()::text), (random() * 1e12)::bigint);" \
  >"$work/insert.sql"
pgbench -h 127.0.0.1 -U postgres -i -q -s 10 kefu_pgbench >/dev/null 2>&1
pgbench_tps() { pgbench -h 127.0.0.1 -U postgres -n -c "$conc" -j 2 -T "$secs" "$@" kefu_pgbench 2>/dev/null \
  | awk '/^tps/{printf "%.0f", $3; exit}'; }
# A ceiling that printed no figure stops the run (rounds are compared pairwise).
figure() { [ -n "$2" ] || { echo "$1 gave no figure" >&2; exit 1; }; echo "$1 rps=$2"; }
results=$(mktemp)
for r in $(seq 1 "$rounds"); do
  echo "-- round $r"
  {
    figure pgbench-insert "$(pgbench_tps -f "$work/insert.sql")"
    "$load" run create-ticket "$t" "$secs" "$conc" "$work/ids"
    figure pgbench-select "$(pgbench_tps -S)"
    "$load" run get-customer "$c" "$secs" "$conc" "$work/ids"
    "$load" run get-customer-summary "$c" "$secs" "$conc" "$work/ids"
    "$load" run rest-get-customer "$g" "$secs" "$conc" "$work/ids"
    "$load" run get-ticket "$t" "$secs" "$conc" "$work/ids"
    "$load" run rest-get-ticket "$g" "$secs" "$conc" "$work/ids"
    "$load" run list-tickets "$t" "$secs" "$conc" "$work/ids"
    figure redis-set "$(redis-benchmark -h 127.0.0.1 -n 200000 -c "$conc" -q -t set --dbnum 13 | tr '\r' '\n' \
      | awk '/requests per second/{print $2; exit}')"
  } | tee -a "$results"
done
redis-cli -h 127.0.0.1 -n 13 flushdb >/dev/null

echo "== summary: median (min–max) over $rounds rounds"
python3 - "$results" <<'EOF'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    m = re.match(r"(\S+) .*?rps=([\d.]+)", line)
    if m:
        runs.setdefault(m.group(1), []).append(float(m.group(2)))
def fig(name):
    v = runs.get(name, [0])
    return statistics.median(v), min(v), max(v)
for name in runs:
    med, lo, hi = fig(name)
    print(f"{name:24} {med:10.0f} /s  ({lo:.0f}–{hi:.0f})")
def ratio(label, a, b, goal):
    ra = [x / y for x, y in zip(runs.get(a, []), runs.get(b, [])) if y]
    if ra:
        print(f"{label:44} {statistics.median(ra):5.2f}×  ({min(ra):.2f}–{max(ra):.2f}; goal ≥ {goal}×)")
print()
ratio("CreateTicket / pgbench single-row insert", "create-ticket", "pgbench-insert", 0.5)
ratio("GetCustomer (logged read) / pgbench -S", "get-customer", "pgbench-select", 0.6)
ratio("GetCustomer (no contacts) / pgbench -S", "get-customer-summary", "pgbench-select", 0.6)
ratio("REST GetCustomer / gRPC GetCustomer", "rest-get-customer", "get-customer", 0.75)
ratio("REST GetTicket / gRPC GetTicket", "rest-get-ticket", "get-ticket", 0.75)
ratio("ListTickets (page 50) / GetTicket", "list-tickets", "get-ticket", 0.5)
EOF
rm -f "$results"
cleanup
pids=""
redis-cli -h 127.0.0.1 -n 11 flushdb >/dev/null
for db in kefu_bench_customers kefu_bench_tickets kefu_bench_gateway kefu_pgbench; do
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" 2>/dev/null || true
done
