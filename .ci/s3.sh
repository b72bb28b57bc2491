#!/usr/bin/env bash
# Starts a throw-away S3-protocol server that checks AWS SigV4 signatures
# (s3s-fs) on 127.0.0.1:9000 (or $S3_PORT), with the bucket phoneauth-test,
# access key phoneauth-test-key and secret phoneauth-test-secret, files under
# ${TMPDIR:-/tmp}/phoneauth-s3 (phoneauth-s3-$S3_PORT for another port),
# unless ours already answers there; self-tests it (S3_SELFTEST=0 skips) and
# prints its endpoint URL, alone on stdout.
# Builds s3s-fs into ~/.cache/phoneauth-tools the first time (minutes).
# `stop` removes it.
#
# The server wants path-style URLs (http://127.0.0.1:9000/phoneauth-test/KEY),
# accepts any region in the credential scope, and requires the
# x-amz-content-sha256 header on every signed request.
set -euo pipefail
exec 3>&1 1>&2 # stdout is for the URL alone; everything else goes to stderr

version=0.14.1 # the newest s3s-fs whose rust-version (1.92) is <= ours; 0.15+ need 1.96
tools="$HOME/.cache/phoneauth-tools"
port="${S3_PORT:-9000}"
dir="${TMPDIR:-/tmp}/phoneauth-s3"
[ "$port" = 9000 ] || dir="$dir-$port"
root="$dir/data"
pidfile="$dir/s3s-fs.pid"
log="$dir/s3s-fs.log"
url="http://127.0.0.1:$port"
bucket=phoneauth-test
key=phoneauth-test-key
secret=phoneauth-test-secret
empty_sha=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855

alive() { # PID: a running (not zombie) process
  local st
  [ -r "/proc/$1/stat" ] || return 1
  read -r _ _ st _ <"/proc/$1/stat" 2>/dev/null || return 1
  [ "$st" != Z ]
}
our_pid() { [ -s "$pidfile" ] && alive "$(cat "$pidfile")" && cat "$pidfile"; }

stop() {
  local pid
  if pid=$(our_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do alive "$pid" || break; sleep 0.1; done
    alive "$pid" && kill -9 "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
}

if [ "${1:-}" = "stop" ]; then
  stop
  exit 0
fi

have() { command -v "$1" >/dev/null 2>&1; }
have curl || { echo "s3: curl is needed" >&2; exit 1; }

# s3curl SECRET PAYLOAD_SHA256 CURL_ARGS...: a SigV4-signed request; prints
# the HTTP status (000 when nothing answered), the body goes to $body.
body=$(mktemp)
trap 'rm -f "$body"' EXIT
s3curl() {
  local sec=$1 sha=$2
  shift 2
  curl -s --max-time 10 -o "$body" -w '%{http_code}' \
    --aws-sigv4 "aws:amz:us-east-1:s3" --user "$key:$sec" \
    -H "x-amz-content-sha256: $sha" "$@" || true
}
answers() { # anything speaking HTTP on the port (unsigned requests get 403)
  [ "$(curl -s --max-time 2 -o /dev/null -w '%{http_code}' "$url/" || true)" != 000 ]
}
ours_answers() { [ "$(s3curl "$secret" "$empty_sha" --max-time 2 -I "$url/$bucket")" = 200 ]; }

selftest() {
  local obj="$url/$bucket/_selftest/ping.txt" f code sha fail=0
  f=$(mktemp)
  printf 'phoneauth s3 self-test %s\n' "$$" >"$f"
  sha=$(sha256sum "$f" | cut -d' ' -f1)
  check() { # WHAT EXPECTED GOT
    if [ "$2" = "$3" ]; then echo "s3 self-test: $1: $3 (ok)"; else
      echo "s3 self-test: $1: got $3, want $2: $(head -c 300 "$body")"; fail=1
    fi
  }
  check "signed PUT" 200 "$(s3curl "$secret" "$sha" -T "$f" "$obj")"
  code=$(s3curl "$secret" "$empty_sha" "$obj")
  cmp -s "$f" "$body" || code="$code (body differs)"
  check "signed GET" 200 "$code"
  check "GET signed with a wrong secret" 403 "$(s3curl wrong-secret "$empty_sha" "$obj")"
  check "PUT signed with a wrong secret" 403 "$(s3curl wrong-secret "$sha" -T "$f" "$url/$bucket/_selftest/forged.txt")"
  check "GET after the forged PUT" 404 "$(s3curl "$secret" "$empty_sha" "$url/$bucket/_selftest/forged.txt")"
  check "unsigned PUT" 403 "$(curl -s --max-time 10 -o "$body" -w '%{http_code}' -T "$f" "$obj" || true)"
  check "unsigned GET" 403 "$(curl -s --max-time 10 -o "$body" -w '%{http_code}' "$obj" || true)"
  check "signed DELETE" 204 "$(s3curl "$secret" "$empty_sha" -X DELETE "$obj")"
  rm -f "$f"
  # s3s-fs keeps the emptied folder and its metadata files ("_selftest" in
  # URL-safe base64 is X3NlbGZ0ZXN0); leave the bucket as the tests expect it.
  rm -rf "$root/$bucket/_selftest" "$root"/.bucket-*.object-X3NlbGZ0ZXN0*
  if [ "$fail" -ne 0 ]; then
    echo "s3: the server at $url does not behave like a signature-checking S3 (log: $log)"
    exit 1
  fi
}

if ours_answers; then
  echo "s3: reusing the server at $url"
  [ "${S3_SELFTEST:-1}" = 0 ] || selftest
  echo "$url" >&3
  exit 0
fi
if answers; then
  echo "s3: something else answers on 127.0.0.1:$port (not s3s-fs with our keys); set S3_PORT"
  exit 1
fi

# The binary: on PATH, else in our cache, else built there.
bin=$(command -v s3s-fs || true)
[ -n "$bin" ] || bin="$tools/bin/s3s-fs"
if [ ! -x "$bin" ]; then
  have cargo && have rustc || { echo "s3: cargo and rustc are needed to build s3s-fs" >&2; exit 1; }
  rv=$(rustc --version | awk '{print $2}')
  if [ "$(printf '%s\n' 1.92.0 "$rv" | sort -V | head -n1)" != 1.92.0 ]; then
    echo "s3: s3s-fs $version needs rustc >= 1.92, found $rv"
    exit 1
  fi
  echo "s3: building s3s-fs $version into $tools (rustc $rv; takes a few minutes)"
  t0=$(date +%s)
  nice -n 10 cargo install --locked s3s-fs --version "$version" --features binary \
    --root "$tools" -j "${S3S_FS_JOBS:-1}"
  echo "s3: built s3s-fs in $(($(date +%s) - t0)) s"
fi
echo "s3: using $bin ($("$bin" --version))"

# A fresh, empty store; a stale server of ours (not answering) goes first.
stop
mkdir -p "$root/$bucket"
echo "s3: starting s3s-fs on $url, data under $root"
setsid "$bin" --host 127.0.0.1 --port "$port" \
  --access-key "$key" --secret-key "$secret" "$root" \
  </dev/null >"$log" 2>&1 3>&- &
echo $! >"$pidfile"

up=0
for _ in $(seq 1 300); do # 30 s
  if ours_answers; then up=1; break; fi
  alive "$(cat "$pidfile")" || break
  sleep 0.1
done
if [ "$up" -ne 1 ]; then
  echo "s3: s3s-fs did not answer on $url; its log:"
  tail -n 30 "$log" || true
  stop
  exit 1
fi

[ "${S3_SELFTEST:-1}" = 0 ] || selftest
echo "$url" >&3
