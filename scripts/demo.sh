#!/usr/bin/env bash
# `make run`: the demo. The camera daemon, armed, on the bundled clip (or PYCAM_SOURCE if you set
# one, e.g. PYCAM_SOURCE=picamera2), with its own Redis on a free port and its own data folder,
# both removed when it stops (Ctrl-C). It reads neither .env nor pycam.yaml and talks to no
# Redis of yours, so nothing it finds is ever queued for your real Slack channel.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PY="$ROOT/.venv/bin/python"
scripts/ensure_packages.sh
DEMO="$(mktemp -d -t pycam-demo.XXXXXX)"
PORT="$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
cleanup() {
  if [ -s "$DEMO/redis.pid" ]; then kill "$(cat "$DEMO/redis.pid")" 2>/dev/null || true; fi
  sleep 0.2
  rm -rf "$DEMO"
}
trap cleanup EXIT
redis-server --port "$PORT" --bind 127.0.0.1 --save "" --appendonly no --dir "$DEMO" \
  --daemonize yes --pidfile "$DEMO/redis.pid" --logfile "$DEMO/redis.log"
echo "pycam demo: watching ${PYCAM_SOURCE:-the bundled sample clip}; each event prints a line. Ctrl-C stops it and removes everything."
export PYCAM_SOURCE="${PYCAM_SOURCE:-$ROOT/sample/one-by-one-person-detection.mp4}"
PYCAM_ENV_FILE="" PYCAM_CONFIG="" REDIS_URL="redis://127.0.0.1:$PORT/0" PYCAM_DATA_DIR="$DEMO/data" \
  "$PY" app/security_system.py --arm || true
