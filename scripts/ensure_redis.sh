#!/usr/bin/env bash
# Make sure a redis-server binary exists, installing Debian's package when it does not.
# Runs apt-get directly as root, or through passwordless sudo (the Pi's default user has it).
set -euo pipefail
if command -v redis-server >/dev/null 2>&1; then exit 0; fi
echo "pycam: redis-server is missing; installing Debian's redis-server package" >&2
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "pycam: cannot install redis-server without a password: run 'sudo apt-get install -y redis-server' once, then retry" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# Debian enables and starts the service; pycam starts its own when REDIS_URL is unset and
# nothing answers on localhost:6379, so either way works.
command -v redis-server >/dev/null
