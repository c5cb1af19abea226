#!/usr/bin/env bash
# Print a REDIS_URL that answers: $REDIS_URL if set, else a Redis on localhost:6379, else a
# redis-server this script starts itself (persistent AOF in $PYCAM_DATA_DIR/redis, port 6379).
set -euo pipefail
if [ -n "${REDIS_URL:-}" ]; then echo "$REDIS_URL"; exit 0; fi
here="$(cd "$(dirname "$0")/.." && pwd)"
data="${PYCAM_DATA_DIR:-$here/data}"
if command -v redis-cli >/dev/null 2>&1 && redis-cli -p 6379 ping >/dev/null 2>&1; then
  echo "redis://localhost:6379/0"; exit 0
fi
command -v redis-server >/dev/null 2>&1 || "$here/scripts/ensure_packages.sh"
mkdir -p "$data/redis" "$data/logs"
redis-server --port 6379 --bind 127.0.0.1 --dir "$data/redis" --appendonly yes \
  --appendfsync everysec --daemonize yes --pidfile "$data/redis/redis.pid" \
  --logfile "$data/logs/redis.log" >/dev/null
for _ in $(seq 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
echo "redis://localhost:6379/0"
