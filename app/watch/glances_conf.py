"""glances.conf as this Pi runs it: the repo's file with the AMP counts of its settings.

    python3 -m app.watch.glances_conf     writes <data_dir>/run/glances.conf, prints its path

Several cameras (setting `cameras`) are that many camera daemons, so glances expects that count,
no fewer and no more. A camera Pi (role: camera) runs only its cameras and the notifier: the hub's
processes and Redis are not watched there. Only values change: the repo's comments stay.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import config
from app import utils

SOURCE = config.ROOT / "glances.conf"
HUB_ONLY = ("amp_slack_socket", "amp_who_is_home", "amp_watchdog", "amp_s3_upload", "amp_flask_app", "amp_redis")


def changes(settings) -> dict[tuple[str, str], str]:
    """(section, key) -> value, for this Pi's settings."""
    n = str(len(settings.camera_names))
    out = {("amp_security_system", "countmin"): n, ("amp_security_system", "countmax"): n}
    if settings.role == "camera":
        out |= {(section, "enable"): "false" for section in HUB_ONLY}
    return out


def render(text: str, settings) -> str:
    """The glances.conf text with this Pi's values (each key must be in the text already)."""
    wanted = changes(settings)
    section, lines, done = None, [], set()
    for line in text.splitlines():
        if m := re.fullmatch(r"\[(.+)\]", line.strip()):
            section = m.group(1)
        elif (m := re.match(r"(\w+)=", line)) and (section, m.group(1)) in wanted:
            line = f"{m.group(1)}={wanted[(section, m.group(1))]}"
            done.add((section, m.group(1)))
        lines.append(line)
    missing = set(wanted) - done
    if missing:
        raise ValueError(f"glances.conf has no {sorted(missing)}")
    return "\n".join(lines) + "\n"


def main() -> None:
    settings = config.load_or_exit()
    out = Path(settings.data_dir) / "run" / "glances.conf"
    out.parent.mkdir(parents=True, exist_ok=True)
    utils.atomic_write_bytes(out, render(SOURCE.read_text(), settings).encode())
    print(out)


if __name__ == "__main__":
    sys.exit(main())
