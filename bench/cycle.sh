#!/usr/bin/env bash
# Performance cycles for teams of 50, 200 and 500 on both backends
# (bench/src/cycle.rs): open, close with its floor, list, report, export.
# Needs PostgreSQL, Redis and an S3 endpoint on 127.0.0.1 (as CI has; the suite
# keeps complaint evidence there: KEFU_TEST_S3_URL, default moto on :5999).
# Usage: bench/cycle.sh [SIZES=50,200,500]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/kefu-target}
cargo build --release --locked -q -p kefu-bench --bin cycle
echo "== machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(psql --version)"
KEFU_LOG=warn KEFU_TEST_DATABASE_URL=${KEFU_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres} \
  KEFU_TEST_REDIS_URL=${KEFU_TEST_REDIS_URL:-redis://127.0.0.1:6379} \
  KEFU_TEST_S3_URL=${KEFU_TEST_S3_URL:-http://127.0.0.1:5999} "$CARGO_TARGET_DIR/release/cycle" "${1:-50,200,500}"
