#!/usr/bin/env bash
# Makes sure Redis (127.0.0.1:6379), PostgreSQL (127.0.0.1:5432) and MariaDB
# (127.0.0.1:3306, root without a password, database `test`) answer, and that
# Chromium and nginx are installed, installing from Debian and starting what
# does not answer. In CI a service the tests need that still does not answer
# fails the run; elsewhere it is reported.
set -uo pipefail

need_apt=()
have() { command -v "$1" >/dev/null 2>&1; }

redis_up() { have redis-cli && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
pg_up() { have pg_isready && pg_isready -h 127.0.0.1 -p 5432 -q; }
mysql_up() { have mysqladmin && mysqladmin -h 127.0.0.1 -P 3306 -uroot --connect-timeout=2 ping >/dev/null 2>&1; }

if ! redis_up; then
  have redis-server || need_apt+=(redis-server)
fi
if ! pg_up; then
  have pg_ctlcluster || need_apt+=(postgresql)
fi
if ! mysql_up; then
  [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server)
fi
# Headless Chromium and its driver for the browser tests; a CJK font so the
# Chinese pages render (for the screenshots).
have chromium || need_apt+=(chromium)
have chromedriver || need_apt+=(chromium-driver)
[ -e /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ] || need_apt+=(fonts-wqy-microhei)
# A real nginx for the forward-auth test (auth_request is in Debian's build).
[ -x /usr/sbin/nginx ] || have nginx || need_apt+=(nginx)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing: ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! redis_up; then
  echo "starting redis-server"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
fi
if ! pg_up; then
  echo "starting postgresql"
  ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n1)
  if [ -n "$ver" ]; then
    pg_ctlcluster --skip-systemctl-redirect "$ver" main start || true
  fi
fi

if ! mysql_up && [ -x /usr/sbin/mariadbd ]; then
  echo "starting mariadb"
  { service mariadb start || /etc/init.d/mariadb start; } >/dev/null 2>&1 || true
  # A fresh Debian install lets root in over the socket only: open TCP
  # logins without a password, as these machines have them.
  for _ in $(seq 1 30); do mariadb -uroot -e 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
  mariadb -uroot -e "ALTER USER root@localhost IDENTIFIED VIA mysql_native_password USING PASSWORD(''); CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true
fi

for _ in $(seq 1 30); do
  redis_up && pg_up && mysql_up && break
  sleep 1
done

status=0
if have chromium && have chromedriver; then echo "chromium: $(chromium --version 2>/dev/null | head -n1)"; else echo "chromium: MISSING"; status=1; fi
if [ -x /usr/sbin/nginx ] || have nginx; then echo "nginx: $( (/usr/sbin/nginx -v || nginx -v) 2>&1 | head -n1)"; else echo "nginx: MISSING"; status=1; fi
if redis_up; then echo "redis: up"; else echo "redis: NOT ANSWERING"; status=1; fi
if pg_up; then
  echo "postgresql: up"
  # Trust auth is expected on these machines; make sure the test database exists.
  psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='test'" 2>/dev/null | grep -q 1 \
    || psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null 2>&1 || true
else
  echo "postgresql: NOT ANSWERING"; status=1
fi
if mysql_up; then
  echo "mariadb: up"
  mariadb -h 127.0.0.1 -uroot -e "CREATE DATABASE IF NOT EXISTS test" >/dev/null 2>&1 || true
else
  echo "mariadb: NOT ANSWERING"; status=1
fi

if [ "$status" -ne 0 ] && [ "${CI:-}" = "true" ]; then
  echo "a required service is down; in CI that is a failure" >&2
  exit 1
fi
exit 0
