#!/usr/bin/env bash
# Run glances in web mode with pycam's glances.conf, counted for this Pi's settings (used by
# `scripts/pycam start` and systemd).
# With a password file (made by `scripts/pycam glances-password`) it listens on PYCAM_GLANCES_BIND
# (default 0.0.0.0) and asks for that password; without one it listens on 127.0.0.1 only, for an
# SSH tunnel. Never prompts, so it runs under nohup and systemd.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
glances="$root/.venv/bin/glances"
if [ ! -x "$glances" ]; then
  glances="$(command -v glances)" || { echo "pycam: glances is not installed (make venv)" >&2; exit 1; }
fi
port="${PYCAM_GLANCES_PORT:-61208}"
# The file `glances -w --password` reads before it would prompt (glances' user config dir).
pwfile="${XDG_CONFIG_HOME:-$HOME/.config}/glances/glances.pwd"
# The repo's glances.conf with this Pi's counts (its cameras; a camera Pi watches only its own).
python="$root/.venv/bin/python"; [ -x "$python" ] || python=python3
if ! conf="$(cd "$root" && "$python" -m app.watch.glances_conf)"; then
  echo "pycam: glances uses $root/glances.conf as it is (the settings above could not be read)" >&2
  conf="$root/glances.conf"
fi
common=(-C "$conf" -w -p "$port" -t 3 --disable-check-update --disable-config-exec)
if [ -s "$pwfile" ]; then
  exec "$glances" "${common[@]}" --password -B "${PYCAM_GLANCES_BIND:-0.0.0.0}"
fi
echo "pycam: no glances password in $pwfile, so glances listens on 127.0.0.1:$port only;" \
  "set one with: scripts/pycam glances-password" >&2
exec "$glances" "${common[@]}" -B 127.0.0.1
