#!/usr/bin/env bash
# phoneauth against the Flask original, side by side, in one run.
#
#   bench/compare.sh                # ~4 minutes on 2 cores
#   SECONDS_PER_RUN=20 ROUNDS=2 bench/compare.sh
#
# Starts the Flask original (../shared/baseline, copied to target/bench/ so its
# pid files, venv and SQLite file stay out of the shared folder) and phoneauth
# twice: embedded (memory store + SQLite) and production mode (Redis +
# PostgreSQL on this machine's standard ports). The same load generator
# (examples/loadgen.rs) drives every scenario against every service,
# alternating services within each round. Everything targets 127.0.0.1, and
# every run is bounded in time. Prints one table with ratios to the original;
# raw JSON lines go to bench/out/<time>/.
#
# Needs: redis-server, python3 with venv, PostgreSQL on 127.0.0.1:5432 (trust)
# and Redis on 127.0.0.1:6379 for production mode (skipped, loudly, without).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
BASELINE_SRC="${BASELINE_SRC:-$ROOT/../shared/baseline}"
SECONDS_PER_RUN="${SECONDS_PER_RUN:-10}"
WARMUP="${WARMUP:-2}"
ROUNDS="${ROUNDS:-1}"
CONC_IMAGE="${CONC_IMAGE:-16}"
CONC_SEND="${CONC_SEND:-16}"
CONC_REGISTER="${CONC_REGISTER:-8}"
CONC_OVERLOAD="${CONC_OVERLOAD:-64}"
PA_PORT=18080
BL_PORT=5055
OUT="bench/out/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$OUT"
RESULTS="$OUT/results.jsonl"
: > "$RESULTS"

say() { printf '== %s\n' "$*" >&2; }

# ---- build (one release build; the default test run never does this) -------
say "building phoneauth and the bench tools (release)"
cargo build --release --locked --bin phoneauth --example loadgen --example hash_cost \
  --example store_memory >&2
BIN="$ROOT/target/release/phoneauth"
LOADGEN="$ROOT/target/release/examples/loadgen"

# ---- the Flask original ------------------------------------------------------
BL="$ROOT/target/bench/baseline"
if [ ! -x "$BL/.venv/bin/gunicorn" ]; then
  say "preparing the Flask original in $BL"
  rm -rf "$BL" && mkdir -p "$(dirname "$BL")"
  cp -r "$BASELINE_SRC" "$BL" && chmod -R u+w "$BL"
  python3 -m venv "$BL/.venv"
  "$BL/.venv/bin/pip" install -q -r "$BL/requirements.txt" >&2
fi

# ---- processes ---------------------------------------------------------------
PA_PID=""
cleanup() {
  if [ -n "$PA_PID" ]; then kill "$PA_PID" 2>/dev/null || true; wait "$PA_PID" 2>/dev/null || true; fi
  (cd "$BL" && ./run.sh stop >/dev/null 2>&1) || true
}
trap cleanup EXIT

rss_mb() { awk '/^VmRSS:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"; }

start_phoneauth() { # mode: embedded | production
  local mode="$1" dir="$ROOT/target/bench/phoneauth-$1"
  rm -rf "$dir" && mkdir -p "$dir"
  local env=(
    PHONEAUTH_SERVER__LISTEN="127.0.0.1:$PA_PORT"
    PHONEAUTH_SERVER__ADMIN_LISTEN="127.0.0.1:19100"
    PHONEAUTH_SERVER__SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
    PHONEAUTH_DEV__EXPOSE_SECRETS=true
    # Every request comes from 127.0.0.1: lift the per-client limits.
    PHONEAUTH_LIMITS__CAPTCHA_PER_IP_PER_MINUTE=1000000000
    PHONEAUTH_LIMITS__SMS_REQUESTS_PER_IP_PER_MINUTE=1000000000
    PHONEAUTH_LIMITS__SMS_SENT_PER_IP_PER_HOUR=1000000000
    PHONEAUTH_LIMITS__SMS_BUDGET_PER_DAY=1000000000
    # The load sends codes it never uses: anti-pumping would (rightly) stop it.
    PHONEAUTH_DEFENCE__MODE=off
  )
  if [ "$mode" = embedded ]; then
    env+=(PHONEAUTH_DATABASE__URL="sqlite://$dir/phoneauth.db")
  else
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'DROP DATABASE IF EXISTS phoneauth_bench' >/dev/null 2>&1 || true
    psql -h 127.0.0.1 -U postgres -d postgres -qc 'CREATE DATABASE phoneauth_bench' >/dev/null
    redis-cli -p 6379 --scan --pattern 'phoneauth-bench:*' | xargs -r redis-cli -p 6379 del >/dev/null
    env+=(PHONEAUTH_DATABASE__URL="postgres://postgres@127.0.0.1:5432/phoneauth_bench"
      PHONEAUTH_STORE__URL="redis://127.0.0.1:6379" PHONEAUTH_STORE__KEY_PREFIX="phoneauth-bench:")
  fi
  (cd "$dir" && env "${env[@]}" "$BIN" serve >"$dir/log" 2>&1) &
  PA_PID=$!
  for _ in $(seq 100); do
    curl -fs -o /dev/null "http://127.0.0.1:$PA_PORT/healthz" && break
    sleep 0.1
  done
  # `( cd … && … ) &` forks a subshell; the server is its child.
  local child
  child="$(pgrep -P "$PA_PID" -x phoneauth || true)"
  [ -n "$child" ] && PA_SERVER_PID="$child" || PA_SERVER_PID="$PA_PID"
  sleep 2
  echo "{\"service\":\"phoneauth-$mode\",\"idle_rss_mb\":$(rss_mb "$PA_SERVER_PID")}" >>"$RESULTS"
}

stop_phoneauth() {
  echo "{\"service\":\"$1\",\"loaded_rss_mb\":$(rss_mb "$PA_SERVER_PID")}" >>"$RESULTS"
  kill "$PA_PID" 2>/dev/null || true
  kill "$PA_SERVER_PID" 2>/dev/null || true
  wait "$PA_PID" 2>/dev/null || true
  PA_PID=""
}

run_load() { # service base scenario concurrency server-pids backend-pids
  local service="$1" base="$2" scenario="$3" conc="$4" spids="$5" bpids="$6" args=()
  for p in $spids; do args+=(--server-pid "$p"); done
  for p in $bpids; do args+=(--backend-pid "$p"); done
  say "$service $scenario (concurrency $conc, ${SECONDS_PER_RUN}s)"
  timeout $((SECONDS_PER_RUN + WARMUP + 60)) "$LOADGEN" "$base" "$scenario" --concurrency "$conc" \
    --seconds "$SECONDS_PER_RUN" --warmup "$WARMUP" "${args[@]}" --json |
    sed "s/^{/{\"service\":\"$service\",/" | tee -a "$RESULTS" >&2
}

conc_of() { case "$1" in image) echo "$CONC_IMAGE" ;; send) echo "$CONC_SEND" ;; register) echo "$CONC_REGISTER" ;; esac; }

have_prod=1
if ! redis-cli -p 6379 ping >/dev/null 2>&1 || ! psql -h 127.0.0.1 -U postgres -d postgres -qc 'select 1' >/dev/null 2>&1; then
  say "*** Redis on 6379 or PostgreSQL on 5432 does not answer: production mode is NOT measured ***"
  have_prod=0
fi

say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
"$ROOT/target/release/examples/hash_cost" 20 | sed 's/^{/{"service":"argon2id",/' >>"$RESULTS"

for round in $(seq "$ROUNDS"); do
  for scenario in image send register; do
    conc="$(conc_of "$scenario")"
    # The original: a fresh SQLite file and Redis for every scenario.
    (cd "$BL" && ./run.sh stop >/dev/null 2>&1; FRESH_DB=1 ./run.sh start >/dev/null)
    master="$(cat "$BL/gunicorn.pid")"
    run_load original "http://127.0.0.1:$BL_PORT" "$scenario" "$conc" \
      "$master $(pgrep -P "$master" | xargs)" "$(cat "$BL/redis.pid")"
    (cd "$BL" && ./run.sh stop >/dev/null)

    start_phoneauth embedded
    run_load phoneauth-embedded "http://127.0.0.1:$PA_PORT" "$scenario" "$conc" "$PA_SERVER_PID" ""
    stop_phoneauth phoneauth-embedded

    if [ "$have_prod" = 1 ]; then
      start_phoneauth production
      run_load phoneauth-production "http://127.0.0.1:$PA_PORT" "$scenario" "$conc" "$PA_SERVER_PID" \
        "$(pgrep -f 'redis-server .*:6379' | xargs) $(pgrep -x postgres | xargs)"
      stop_phoneauth phoneauth-production
    fi
  done
done

# Registration past the hashing capacity: a full queue must answer promptly.
start_phoneauth embedded
run_load phoneauth-embedded-overload "http://127.0.0.1:$PA_PORT" register "$CONC_OVERLOAD" "$PA_SERVER_PID" ""
stop_phoneauth phoneauth-embedded

say "embedded store: 1,000,000 outstanding captchas"
"$ROOT/target/release/examples/store_memory" 1000000 256 | sed 's/^{/{"service":"store_memory",/' >>"$RESULTS"

python3 "$ROOT/bench/report.py" "$RESULTS" "$(nproc)"
echo "raw results: $RESULTS" >&2
