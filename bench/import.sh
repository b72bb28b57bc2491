#!/usr/bin/env bash
# How fast `phoneauth import-users` moves users (SPEC §11; the issue asks for
# at least 5,000 a second into SQLite or PostgreSQL). Builds N users
# (default 100,000) with werkzeug-made hashes, then imports them:
#   - from a CSV file into SQLite, PostgreSQL and MySQL;
#   - straight from an iHome `ih_user_profile` table in MariaDB into SQLite;
#   - once more into SQLite, where every row is present already (a re-run).
# Prints the import's JSON summary for each. Needs the local PostgreSQL and
# MariaDB (127.0.0.1, as .ci/services.sh starts them); touches only
# databases it creates.
#
#   bench/import.sh               # ~1 minute after the release build
#   N=20000 bench/import.sh
set -euo pipefail
cd "$(dirname "$0")/.."
N="${N:-100000}"
cargo build --release --locked --bin phoneauth >&2
bin="$PWD/target/release/phoneauth"
work=$(mktemp -d)
trap 'rm -rf "$work"; psql -q -h 127.0.0.1 -U postgres test -c "DROP SCHEMA IF EXISTS bench_import CASCADE" >/dev/null 2>&1 || true; mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS bench_import_src; DROP DATABASE IF EXISTS bench_import" >/dev/null 2>&1 || true' EXIT
# A pbkdf2:sha256 hash made by werkzeug (src/passwords/legacy_vectors.txt):
# the import stores hashes as they are, so one will do for every row.
hash=$(grep -m1 '^pbkdf2:sha256:150000' src/passwords/legacy_vectors.txt)

python3 - "$N" "$hash" >"$work/users.csv" <<'PY'
import sys
n, h = int(sys.argv[1]), sys.argv[2]
print("id,mobile,password_hash,name,create_time")
for i in range(1, n + 1):
    print(f"{i},138{i:08d},{h},user{i},2018-05-01 10:00:00")
PY

run() { # label database-url args...
  local label=$1 db=$2
  shift 2
  printf '%-28s ' "$label"
  (cd "$work" && DATABASE_URL="$db" "$bin" import-users "$@" 2>/dev/null) |
    python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps({k: d[k] for k in ("read","imported","present","rejected","seconds","rows_per_second")}))'
}

run "csv -> sqlite" "sqlite://$work/a.db" users.csv
run "csv -> sqlite (re-run)" "sqlite://$work/a.db" users.csv
psql -q -h 127.0.0.1 -U postgres test -c "DROP SCHEMA IF EXISTS bench_import CASCADE; CREATE SCHEMA bench_import"
run "csv -> postgresql" "postgres://postgres@127.0.0.1:5432/test?options=-c%20search_path%3Dbench_import" users.csv
mysql -h127.0.0.1 -uroot -e "DROP DATABASE IF EXISTS bench_import; CREATE DATABASE bench_import"
run "csv -> mysql" "mysql://root@127.0.0.1:3306/bench_import" users.csv

# The iHome table, as the tutorial's model makes it, filled by MariaDB itself.
mysql -h127.0.0.1 -uroot <<SQL
DROP DATABASE IF EXISTS bench_import_src;
CREATE DATABASE bench_import_src;
USE bench_import_src;
CREATE TABLE ih_user_profile (
  create_time DATETIME, update_time DATETIME,
  id INTEGER NOT NULL AUTO_INCREMENT, name VARCHAR(32) NOT NULL,
  password_hash VARCHAR(128) NOT NULL, mobile VARCHAR(11) NOT NULL,
  real_name VARCHAR(32), id_card VARCHAR(20), avatar_url VARCHAR(128),
  PRIMARY KEY (id), UNIQUE (name), UNIQUE (mobile));
INSERT INTO ih_user_profile (create_time, update_time, id, name, password_hash, mobile)
  SELECT NOW(), NOW(), seq, CONCAT('user', seq), '$hash', CONCAT('138', LPAD(seq, 8, '0'))
  FROM seq_1_to_$N;
SQL
run "mariadb table -> sqlite" "sqlite://$work/b.db" --from mysql://root@127.0.0.1:3306/bench_import_src --table ih_user_profile
