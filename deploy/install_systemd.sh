#!/usr/bin/env bash
# Install pycam's systemd units for this checkout, run as the dedicated `pycam` user.
#
#   sudo deploy/install_systemd.sh                    create the user, install, enable and start
#   sudo deploy/install_systemd.sh --data-dir DIR     keep events, training data and logs in DIR
#                                                     (default /var/lib/pycam/data)
#   sudo deploy/install_systemd.sh --no-start         install and enable, start at next boot
#   sudo deploy/install_systemd.sh --uninstall        stop, disable and remove the units
#   deploy/install_systemd.sh --render DIR            only write the units for this checkout to DIR
#   deploy/install_systemd.sh --units                 only print the units the settings' layout enables
#
# Several cameras on this Pi (setting `cameras`): pycam-security-system@NAME.service each. A camera
# Pi (PYCAM_ROLE=camera): its cameras, the notifier that sends their images, glances.
#
# The units in deploy/systemd/ name /opt/pycam (the checkout) and /var/lib/pycam/data (the data
# dir); the copies installed in /etc/systemd/system have this checkout's paths instead.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HOME_DIR=/var/lib/pycam
DATA_DIR="$HOME_DIR/data"
UNIT_DIR=/etc/systemd/system
START=1
ACTION=install

while [ $# -gt 0 ]; do
  case "$1" in
    --data-dir) DATA_DIR="$(realpath -m "$2")"; shift 2 ;;
    --no-start) START=0; shift ;;
    --uninstall) ACTION=uninstall; shift ;;
    --render) ACTION=render; UNIT_DIR="$2"; shift 2 ;;
    --units) ACTION=units; shift ;;
    *) echo "usage: $0 [--data-dir DIR] [--no-start] [--uninstall] [--render DIR] [--units]" >&2; exit 64 ;;
  esac
done

sources() { echo "$ROOT"/deploy/systemd/pycam-*.service "$ROOT/deploy/pycam.target"; }
layout_units() {  # the services of the configured layout, from pycam's settings (.env, pycam.yaml)
  local out name
  out="$(cd "$ROOT" && .venv/bin/python -c 'import config; s = config.load_or_exit()
print(s.layout, "http" if s.serves_http else "socket", s.role, *s.cameras)')" || return 2
  # shellcheck disable=SC2086  # the words printed above
  set -- $out
  if [ $# -gt 3 ]; then   # several cameras: a unit each, from the template
    for name in "${@:4}"; do echo "pycam-security-system@$name.service"; done
  else
    echo pycam-security-system.service
  fi
  [ "$1" = compact ] || echo pycam-glances.service
  if [ "$3" = camera ]; then echo pycam-notifier.service; return 0; fi   # a camera Pi: the hub runs the rest
  case "$1" in
    separate) echo pycam-notifier.service pycam-slack-socket.service pycam-who-is-home.service \
      pycam-s3-upload.service pycam-watchdog.service ;;
    *) echo pycam-services.service ;;
  esac
  [ "$2" = http ] && echo pycam-flask-app.service
  return 0
}
units() { local f; for f in $(sources); do basename "$f"; done; }

render() {  # write every unit to $UNIT_DIR with this checkout's paths
  local f esc_root esc_data
  esc_root="$(printf '%s' "$ROOT" | sed 's/[&|\\]/\\&/g')"
  esc_data="$(printf '%s' "$DATA_DIR" | sed 's/[&|\\]/\\&/g')"
  mkdir -p "$UNIT_DIR"
  for f in $(sources); do
    sed -e "s|/var/lib/pycam/data|$esc_data|g" -e "s|/opt/pycam|$esc_root|g" "$f" >"$UNIT_DIR/$(basename "$f")"
    chmod 644 "$UNIT_DIR/$(basename "$f")"
  done
}

if [ "$ACTION" = render ]; then render; exit 0; fi
if [ "$ACTION" = units ]; then layout_units | tr '\n' ' '; echo; exit 0; fi
[ "$(id -u)" = 0 ] || { echo "pycam: run it with sudo: sudo $0" >&2; exit 1; }

if [ "$ACTION" = uninstall ]; then
  # shellcheck disable=SC2046
  systemctl disable --now $(units) || true
  for u in $(units); do rm -f "$UNIT_DIR/$u"; done
  systemctl daemon-reload
  echo "pycam: units removed; the pycam user and $HOME_DIR are kept"
  exit 0
fi

[ -x "$ROOT/.venv/bin/python" ] || { echo "pycam: no virtualenv in $ROOT: run 'make venv' first" >&2; exit 1; }
# The layout's units (setting `layout`; gunicorn only in HTTP mode): a bad setting stops here,
# before anything is changed.
wanted="$(layout_units | tr '\n' ' ')" || exit 2

# The dedicated user, in the groups that open the camera (video), the Pan-Tilt HAT (i2c, gpio).
if ! id pycam >/dev/null 2>&1; then
  useradd --system --user-group --home-dir "$HOME_DIR" --shell /usr/sbin/nologin pycam
fi
for group in video i2c gpio; do
  if getent group "$group" >/dev/null; then usermod -aG "$group" pycam; fi
done
install -d -o pycam -g pycam -m 0750 "$HOME_DIR" "$DATA_DIR"
# Whoever ran sudo may read the logs and events (files are created group-readable).
if [ -n "${SUDO_USER:-}" ] && [ "$SUDO_USER" != root ]; then usermod -aG pycam "$SUDO_USER"; fi

if ! runuser -u pycam -- test -r "$ROOT/config.py" -a -x "$ROOT/.venv/bin/python"; then
  echo "pycam: the pycam user cannot read $ROOT (a home folder is private on Bookworm)." >&2
  echo "       Clone pycam to /opt/pycam as setup.md shows, or run: chmod o+x $(dirname "$ROOT")" >&2
  exit 1
fi
# Secrets stay private to their owner and the pycam group (each camera's .env.NAME too).
for f in "$ROOT/.env" "$ROOT"/.env.*; do
  if [ -f "$f" ]; then chgrp pycam "$f"; chmod 640 "$f"; fi
done

# glances asks for this password in web mode; without it, it listens on 127.0.0.1 only.
pwd_dir="$HOME_DIR/.config/glances"
own_pwd="$(getent passwd "${SUDO_USER:-root}" | cut -d: -f6)/.config/glances/glances.pwd"
if [ ! -s "$pwd_dir/glances.pwd" ] && [ -s "$own_pwd" ]; then
  install -d -o pycam -g pycam -m 0700 "$HOME_DIR/.config" "$pwd_dir"
  install -o pycam -g pycam -m 0600 "$own_pwd" "$pwd_dir/glances.pwd"
  echo "pycam: glances uses the password set with 'scripts/pycam glances-password'"
elif [ ! -s "$pwd_dir/glances.pwd" ]; then
  echo "pycam: no glances password, so glances listens on 127.0.0.1 only; to set one:" \
    "scripts/pycam glances-password, then run this script again"
fi

if compgen -G "$ROOT/data/run/*.pid" >/dev/null; then
  echo "pycam: processes started with scripts/pycam may still run: stop them with 'scripts/pycam stop'" >&2
fi

render
systemctl daemon-reload
# Units of another layout (or gunicorn after a switch to Socket Mode, or a camera no longer in
# `cameras`) are stopped and disabled.
for unit in $(units) $(systemctl list-units --all --plain --no-legend 'pycam-security-system@*' | awk '{print $1}'); do
  case " $wanted pycam.target " in *" $unit "*) ;; *) systemctl disable --now "$unit" >/dev/null 2>&1 || true ;; esac
done
# shellcheck disable=SC2086  # a list of unit names
systemctl enable pycam.target $wanted
if [ "$START" = 1 ]; then
  systemctl restart pycam.target
  echo "pycam: started; see: systemctl list-units 'pycam*'   and   journalctl -u 'pycam-*' -f"
else
  echo "pycam: enabled; everything starts at the next boot (or: sudo systemctl start pycam.target)"
fi
