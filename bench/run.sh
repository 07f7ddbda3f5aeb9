#!/usr/bin/env bash
# Runs kefu's benchmarks on this machine and prints the figures that
# BENCHMARKS.md records. Needs PostgreSQL and Redis on 127.0.0.1 (as CI has).
# Usage: bench/run.sh [N live targets, default 1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/kefu-target}

echo "== machine"
echo "$(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"

echo "== ceiling: redis-benchmark ZADD (1,000,000 requests, 50 clients, pipeline 16)"
redis-benchmark -h 127.0.0.1 -n 1000000 -c 50 -P 16 -q -t zadd --dbnum 13 | tr '\r' '\n' | grep -v '^$' | tail -1
redis-cli -n 13 flushdb >/dev/null

echo "== ceiling: pgbench single-row INSERT (4 clients, 10 s)"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS kefu_pgbench" -c "CREATE DATABASE kefu_pgbench"
psql -q -h 127.0.0.1 -U postgres -d kefu_pgbench -c "CREATE TABLE t (id BIGSERIAL PRIMARY KEY, record_id TEXT, due_at BIGINT)"
echo "INSERT INTO t (record_id, due_at) VALUES (md5(random()::text), (random() * 1e12)::bigint);" > /tmp/kefu-pgbench.sql
pgbench -h 127.0.0.1 -U postgres -n -c 4 -j 2 -T 10 -f /tmp/kefu-pgbench.sql kefu_pgbench 2>/dev/null | grep -E "tps|latency average"
psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE kefu_pgbench"

echo "== kefu SLA live state"
cargo build --release --locked -q -p kefu-bench --bin sla-live
"$CARGO_TARGET_DIR/release/sla-live" "$n"
