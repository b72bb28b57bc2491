#!/usr/bin/env bash
# The cost of the account routes of SPEC §9 that run on every page view or
# sign-in: GET /user/sessions, GET /auth/verify (forward auth, in front of
# every request of a site) and POST /sessions/sms, as server CPU per call
# from the load generator, in embedded mode (memory store + SQLite) or, with
# MODE=production, on Redis and PostgreSQL on this machine's standard ports.
#
#   bench/accounts.sh                    # ~1 minute after the release build
#   MODE=production bench/accounts.sh
#   SECONDS_PER_RUN=20 bench/accounts.sh
#
# `code-login` is captcha → POST /sms_codes (login) → POST /sessions/sms on a
# fresh number (with accounts.sign_up_by_code, so the call also creates the
# account); `send` is the same without the last call. Their difference is
# the cost of one POST /sessions/sms. Everything targets 127.0.0.1 and every
# run is bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
CONC="${CONC:-8}"
MODE="${MODE:-embedded}"
PORT=18081
cargo build --release --locked --bin phoneauth --example loadgen >&2
dir=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$dir"' EXIT
backend=()
if [ "$MODE" = production ]; then
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'DROP DATABASE IF EXISTS phoneauth_bench' >/dev/null 2>&1 || true
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE phoneauth_bench' >/dev/null
  redis-cli -p 6379 --scan --pattern 'phoneauth-bench:*' | xargs -r redis-cli -p 6379 del >/dev/null
  backend=(PHONEAUTH_DATABASE__URL="postgres://postgres@127.0.0.1:5432/phoneauth_bench"
    PHONEAUTH_STORE__URL="redis://127.0.0.1:6379" PHONEAUTH_STORE__KEY_PREFIX="phoneauth-bench:")
fi
(
  cd "$dir"
  exec env "${backend[@]}" PHONEAUTH_SERVER__LISTEN="127.0.0.1:$PORT" PHONEAUTH_SERVER__ADMIN_LISTEN=off \
    PHONEAUTH_DEV__EXPOSE_SECRETS=true PHONEAUTH_ACCOUNTS__SIGN_UP_BY_CODE=true \
    PHONEAUTH_LIMITS__CAPTCHA_PER_IP_PER_MINUTE=1000000000 \
    PHONEAUTH_LIMITS__SMS_REQUESTS_PER_IP_PER_MINUTE=1000000000 \
    PHONEAUTH_LIMITS__SMS_SENT_PER_IP_PER_HOUR=1000000000 \
    PHONEAUTH_LIMITS__SMS_BUDGET_PER_DAY=1000000000 PHONEAUTH_DEFENCE__MODE=off \
    PHONEAUTH_LOG__LEVEL=warn \
    "$OLDPWD/target/release/phoneauth" serve
) >"$dir/server.log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$PORT/healthz" >/dev/null && break
  sleep 0.1
done
for scenario in ${SCENARIOS:-sessions verify send code-login}; do
  target/release/examples/loadgen "http://127.0.0.1:$PORT" "$scenario" \
    --concurrency "$CONC" --seconds "$SECONDS_PER_RUN" --warmup 2 --server-pid "$pid"
done
