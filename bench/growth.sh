#!/usr/bin/env bash
# List and search latency at 1 k, 10 k, 100 k and 1 M rows on both backends
# (bench/src/growth.rs). Needs PostgreSQL and Redis on 127.0.0.1 (as CI has).
# Usage: bench/growth.sh [MAX ROWS=1000000]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/kefu-target}
cargo build --release --locked -q -p kefu-bench --bin growth
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(redis-server --version | cut -d' ' -f3); $(psql --version)"
KEFU_LOG=warn KEFU_TEST_DATABASE_URL=${KEFU_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} \
  KEFU_TEST_REDIS_URL=${KEFU_TEST_REDIS_URL:-redis://127.0.0.1:6379} "$CARGO_TARGET_DIR/release/growth" "${1:-1000000}"
