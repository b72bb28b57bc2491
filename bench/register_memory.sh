#!/usr/bin/env bash
# Memory under a registration burst (issue: RSS after bursts). Starts a
# release phoneauth in embedded mode on loopback, runs the load generator's
# `register` scenario at 64 concurrent for 60 s, and prints the peak and the
# final resident memory of the server.
#
#   cargo build --release --examples --bin phoneauth && bench/register_memory.sh [SECONDS] [CONCURRENCY]
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SECONDS_RUN="${1:-60}"
CONC="${2:-64}"
PORT="${PA_PORT:-18099}"
BIN="$ROOT/target/release/phoneauth"
LOADGEN="$ROOT/target/release/examples/loadgen"
DIR="$ROOT/target/bench/register-memory"
rm -rf "$DIR" && mkdir -p "$DIR"

(cd "$DIR" && exec env \
  PHONEAUTH_SERVER__LISTEN="127.0.0.1:$PORT" \
  PHONEAUTH_SERVER__ADMIN_LISTEN=off \
  PHONEAUTH_DEV__EXPOSE_SECRETS=true \
  PHONEAUTH_LIMITS__CAPTCHA_PER_IP_PER_MINUTE=1000000000 \
  PHONEAUTH_LIMITS__SMS_REQUESTS_PER_IP_PER_MINUTE=1000000000 \
  PHONEAUTH_LIMITS__SMS_SENT_PER_IP_PER_HOUR=1000000000 \
  PHONEAUTH_LIMITS__SMS_BUDGET_PER_DAY=1000000000 PHONEAUTH_DEFENCE__MODE=off \
  "$BIN" serve >"$DIR/log" 2>&1) &
PID=$!
trap 'kill $PID 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -fs -o /dev/null "http://127.0.0.1:$PORT/healthz" && break
  sleep 0.1
done
rss() { awk -v k="$1" '$1 == k":" {printf "%.1f", $2 / 1024}' "/proc/$PID/status"; }
echo "idle: RSS $(rss VmRSS) MB, threads $(awk '/^Threads:/ {print $2}' /proc/$PID/status)"
timeout $((SECONDS_RUN + 60)) "$LOADGEN" "http://127.0.0.1:$PORT" register \
  --concurrency "$CONC" --seconds "$SECONDS_RUN" --warmup 2 --server-pid "$PID"
echo "after ${SECONDS_RUN} s of register at $CONC concurrent: peak RSS $(rss VmHWM) MB, now $(rss VmRSS) MB, threads $(awk '/^Threads:/ {print $2}' /proc/$PID/status)"
