# syntax=docker/dockerfile:1
#
# Assay's gRPC server in a small image.
#
#   docker build -t assay .
#   docker run --rm -p 50051:50051 -v assay-data:/data -e ASSAY_API_KEY="$(openssl rand -hex 32)" assay
#
# It listens on 0.0.0.0, so it needs an API key (ASSAY_API_KEY; clients send it too): without
# one it refuses to start (see "Security" in README.md).
#
# The build needs no protoc (protos are compiled by protox in build.rs) and no database (SQLite
# migrations are embedded in the binary).

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
# The cache mounts keep the crate registry and the build directory between builds; the binary is
# copied out of the mounted target directory so that the next stage can see it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin assay \
    && install -D -m 0755 target/release/assay /out/assay

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 assay \
    && useradd --system --uid 10001 --gid assay --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin assay \
    && mkdir -p /data \
    && chown assay:assay /data
COPY --from=builder /out/assay /usr/local/bin/assay

USER assay:assay
WORKDIR /data
VOLUME /data
EXPOSE 50051
ENV ASSAY_LOG=info
# Arguments after the image name replace CMD (`docker run IMAGE serve --help`); every flag also
# has an ASSAY_* environment variable (e.g. -e ASSAY_DEFAULT_CONCURRENCY=4). SIGTERM (docker
# stop) shuts the server down gracefully.
# grpc.health.v1 through the client: NOT_SERVING (e.g. the database is away) marks it unhealthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["assay", "--server", "127.0.0.1:50051", "health"]
ENTRYPOINT ["assay"]
CMD ["serve", "--listen", "0.0.0.0:50051", "--database", "sqlite:///data/assay.db"]
