#!/usr/bin/env bash
# The pumping simulation of SPEC §10 against the release build, in embedded
# mode: a legitimate population beside a pumping attack, once with
# `defence.mode = enforce` and once with `shadow`. Prints one JSON line per
# mode (examples/pumping.rs).
#
#   bench/pumping.sh                     # ~1 minute after the release build
#   LEGIT=1000 ATTACK=500 bench/pumping.sh
#
# Everything targets 127.0.0.1, and every run is bounded (at most 5,000 sends).
set -euo pipefail
cd "$(dirname "$0")/.."
LEGIT="${LEGIT:-600}"
ATTACK="${ATTACK:-400}"
PORT=18082
ADMIN=19102
cargo build --release --locked --bin phoneauth --example pumping >&2
for mode in enforce shadow; do
  dir=$(mktemp -d)
  (
    cd "$dir"
    exec env PHONEAUTH_SERVER__LISTEN="127.0.0.1:$PORT" PHONEAUTH_SERVER__ADMIN_LISTEN="127.0.0.1:$ADMIN" \
      PHONEAUTH_SERVER__TRUSTED_PROXIES=127.0.0.1 PHONEAUTH_DEV__EXPOSE_SECRETS=true \
      PHONEAUTH_DEFENCE__MODE="$mode" PHONEAUTH_LOG__LEVEL=warn \
      "$OLDPWD/target/release/phoneauth" serve
  ) >"$dir/server.log" 2>&1 &
  pid=$!
  up=
  for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && up=1 && break
    sleep 0.1
  done
  [ -n "$up" ] || { echo "phoneauth did not start:" >&2; cat "$dir/server.log" >&2; exit 1; }
  printf '%s: ' "$mode"
  status=0
  target/release/examples/pumping "http://127.0.0.1:$PORT" --legit "$LEGIT" --attack "$ATTACK" \
    --metrics "http://127.0.0.1:$ADMIN/metrics" || status=$?
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  rm -rf "$dir"
  [ "$status" -eq 0 ] || { echo "the simulation failed ($mode)" >&2; exit "$status"; }
done
