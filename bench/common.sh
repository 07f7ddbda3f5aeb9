# Sourced by the benchmark scripts that drive `kefu` processes: builds the
# release binaries and names them; `free_port` answers a free loopback port.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/var/tmp/kefu-target}
cargo build --release --locked -q -p kefu --bin kefu
cargo build --release --locked -q -p kefu-bench --bin load
kefu="${KEFU_BIN:-$CARGO_TARGET_DIR/release/kefu}"
load="$CARGO_TARGET_DIR/release/load"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
