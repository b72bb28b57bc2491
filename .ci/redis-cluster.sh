#!/usr/bin/env bash
# Starts a throw-away 3-node Redis Cluster on 127.0.0.1:7001-7003 (no
# persistence, files under /tmp/phoneauth-redis-cluster) unless one already
# answers there, and prints its phoneauth URL. `stop` removes it.
set -euo pipefail
dir=/tmp/phoneauth-redis-cluster
ports=(7001 7002 7003)
url="redis+cluster://127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003"

if [ "${1:-}" = "stop" ]; then
  for p in "${ports[@]}"; do redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true; done
  rm -rf "$dir"
  exit 0
fi

if redis-cli -p 7001 cluster info 2>/dev/null | grep -q 'cluster_state:ok'; then
  echo "$url"
  exit 0
fi

mkdir -p "$dir"
for p in "${ports[@]}"; do
  mkdir -p "$dir/$p"
  redis-cli -p "$p" shutdown nosave >/dev/null 2>&1 || true
  rm -f "$dir/$p/nodes.conf"
  redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$dir/$p/nodes.conf" --cluster-node-timeout 2000 \
    --save "" --appendonly no --dir "$dir/$p" --daemonize yes \
    --logfile "$dir/$p/redis.log" >/dev/null
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 50); do redis-cli -p "$p" ping >/dev/null 2>&1 && break; sleep 0.1; done
done
redis-cli --cluster create 127.0.0.1:7001 127.0.0.1:7002 127.0.0.1:7003 \
  --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 1 100); do
  redis-cli -p 7001 cluster info | grep -q 'cluster_state:ok' && break
  sleep 0.1
done
redis-cli -p 7001 cluster info | grep -q 'cluster_state:ok' || { echo "cluster did not form" >&2; exit 1; }
echo "$url"
