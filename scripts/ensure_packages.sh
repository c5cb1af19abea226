#!/usr/bin/env bash
# Make sure Debian's redis-server (needed) and ffmpeg (event clips as H.264; without it they are
# animated GIFs) are there, installing what is missing (make test and make run run this).
# Runs apt-get directly as root, or through passwordless sudo (the Pi's default user has it).
# Only a missing redis-server is an error: ffmpeg is tried once per run and never fails this.
set -euo pipefail
have() { command -v "$1" >/dev/null 2>&1; }
if have redis-server && have ffmpeg; then exit 0; fi
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else SUDO=none; fi
install() {
  [ "$SUDO" != none ] || return 1
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}
if ! have redis-server; then
  echo "pycam: installing Debian's redis-server" >&2
  install redis-server || { echo "pycam: cannot install redis-server: run 'sudo apt-get install -y redis-server' once, then retry" >&2; exit 1; }
  # Debian enables and starts the service; pycam starts its own when REDIS_URL is unset and
  # nothing answers on localhost:6379, so either way works.
fi
if ! have ffmpeg; then
  echo "pycam: installing Debian's ffmpeg (event clips)" >&2
  install ffmpeg || echo "pycam: ffmpeg not installed ('sudo apt-get install -y ffmpeg'): clips are GIFs meanwhile" >&2
fi
have redis-server
