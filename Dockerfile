# phoneauth container image: a multi-stage build, the binary only, non-root.
#
# NOT EXERCISED BY CI: the project's machines run no Docker engine. Kept
# minimal so that it stays obviously correct; build with
#   docker build -t phoneauth .
# and run embedded mode with
#   docker run -p 8000:8000 -e PHONEAUTH_SERVER__LISTEN=0.0.0.0:8000 phoneauth

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin phoneauth

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /var/lib/phoneauth --create-home phoneauth
COPY --from=build /src/target/release/phoneauth /usr/local/bin/phoneauth
USER phoneauth
WORKDIR /var/lib/phoneauth
ENV PHONEAUTH_SERVER__LISTEN=0.0.0.0:8000 \
    PHONEAUTH_SERVER__ADMIN_LISTEN=0.0.0.0:9100 \
    PHONEAUTH_LOG__FORMAT=json
EXPOSE 8000 9100
STOPSIGNAL SIGTERM
ENTRYPOINT ["phoneauth"]
CMD ["serve"]
