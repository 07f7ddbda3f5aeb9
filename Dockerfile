# syntax=docker/dockerfile:1
# kefu: one image for every service (`kefu serve <service>`), migrations
# (`kefu migrate`) and the all-in-one mode (`kefu up`).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin kefu \
 && install -D -m 0755 target/release/kefu /out/kefu

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 kefu \
 && useradd --system --uid 10001 --gid kefu --home-dir /var/lib/kefu --create-home --shell /usr/sbin/nologin kefu
COPY --from=build /out/kefu /usr/local/bin/kefu
USER 10001:10001
WORKDIR /var/lib/kefu
ENV KEFU_LOG_FORMAT=json TZ=Asia/Shanghai
EXPOSE 50051 8080 9090
# Every process answers /readyz on its admin port (the services' gRPC port
# may be TLS-only).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/kefu", "health", "--http", "http://127.0.0.1:9090/readyz"]
ENTRYPOINT ["/usr/local/bin/kefu"]
# The all-in-one demo serves REST to the outside; its gRPC stays inside the
# container (plaintext gRPC only on loopback).
CMD ["up", "--listen", "127.0.0.1:50051", "--http-listen", "0.0.0.0:8080", "--admin-listen", "0.0.0.0:9090", "--data-dir", "/var/lib/kefu/data"]
