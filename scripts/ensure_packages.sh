#!/usr/bin/env bash
# Make sure Debian's redis-server and ffmpeg (event clips) are there, installing what is missing
# (make test, make run and scripts/start_redis.sh run it).
# Runs apt-get directly as root, or through passwordless sudo (the Pi's default user has it).
# Without ffmpeg pycam still runs: its clips are animated GIFs instead of H.264 video.
set -euo pipefail
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v ffmpeg >/dev/null 2>&1 || missing+=(ffmpeg)
[ ${#missing[@]} -eq 0 ] && exit 0
echo "pycam: installing Debian's ${missing[*]}" >&2
if [ "$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
  echo "pycam: cannot install ${missing[*]} without a password: run 'sudo apt-get install -y ${missing[*]}' once" >&2
  command -v redis-server >/dev/null 2>&1 || exit 1   # ffmpeg alone missing: clips fall back to GIF
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian enables and starts the redis service; pycam starts its own when REDIS_URL is unset and
# nothing answers on localhost:6379, so either way works.
command -v redis-server >/dev/null
