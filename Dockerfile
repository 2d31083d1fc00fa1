# Multi-stage build: compile in the Rust image, run from a slim Debian with only the binary.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock sqlx.toml rustfmt.toml ./
COPY src ./src
COPY mmt_migrations ./mmt_migrations
# Declared [[bench]] targets must exist for the manifest to load.
COPY benches ./benches
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates poppler-utils tesseract-ocr tesseract-ocr-eng && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 mmt \
    && mkdir -p /var/lib/mmt-sidecar/audio && chown -R mmt /var/lib/mmt-sidecar
COPY --from=build /src/target/release/mmt-sidecar /usr/local/bin/mmt-sidecar
USER mmt
ENV LISTEN_ADDR=0.0.0.0:8001 LOG_FORMAT=json MMT_AUDIO_DIR=/var/lib/mmt-sidecar/audio
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=3s CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8001"]
ENTRYPOINT ["mmt-sidecar"]
CMD ["serve", "--migrate"]
