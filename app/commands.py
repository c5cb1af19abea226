"""What each slash command and button does: small functions over Redis, each returning Slack JSON.

Every answer is ephemeral and immediate (a few Redis calls). Anything slow, such as uploading the
latest snapshot or rewriting an alert after a click, becomes an outbox job for the notifier.
"""
from __future__ import annotations

import json
import logging
import re
import shutil
import time
from dataclasses import dataclass
from typing import Callable

import redis

from app import events, keys, labels, outbox, slack_messages, state, utils
from app.slack_messages import ephemeral

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Command:
    """One slash command, as Slack sent it (already verified)."""
    name: str           # the canonical subcommand: "on", "status", "rotate", ...
    text: str           # its arguments
    user_id: str
    user_name: str
    response_url: str


NO_HAT = "No pan-tilt hardware is present, so the camera cannot be rotated."
ROTATE_USAGE = ("Usage: `/rotate PAN TILT`, two whole numbers of degrees from -90 to 90 "
                "(e.g. `/rotate 30 -10`). `/rotate` alone shows where the camera points.")
HELP = "\n".join([
    "*pycam commands* (each also works as `/pycam <command>`, e.g. `/pycam status`):",
    "`/pycam_on`, `/pycam_off`: arm or disarm (wins over presence until someone arrives or leaves)",
    "`/pycam_status`: what pycam is doing",
    "`/pycam_latest`: the latest snapshot",
    "`/notifications_on`, `/notifications_off`: alerts in Slack (events are recorded either way)",
    "`/auto_detect_on`, `/auto_detect_off`: arm when everyone has left, disarm when someone is home",
    "`/training_on`, `/training_off`: Occupied / Unoccupied buttons on alerts",
    "`/rotate PAN TILT`: point the camera (degrees, -90..90); `/rotate` alone shows where it points",
])


def _decode(raw: str | None, default=None):
    """A JSON value read from Redis (default when missing or corrupt)."""
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        return default


# ---------------------------------------------------------------- dispatch

def resolve(command: str, text: str) -> tuple[str, str]:
    """(subcommand, arguments) for `/pycam_on` or `/pycam on`; unknown commands resolve to help."""
    name = command.strip().lstrip("/").lower()
    if name == "pycam":
        words = text.split()
        if not words:
            return "help", ""
        first = words[0].lower().removeprefix("pycam_")
        if len(words) >= 2 and f"{first}_{words[1].lower()}" in HANDLERS:  # "/pycam training on"
            return f"{first}_{words[1].lower()}", " ".join(words[2:])
        return (first, " ".join(words[1:])) if first in HANDLERS else ("help", "")
    name = SLASH_ALIASES.get(name, name)
    return (name, text.strip()) if name in HANDLERS else ("help", "")


def run(r: redis.Redis, settings, cmd: Command) -> dict:
    """Answer one command."""
    return HANDLERS[cmd.name](r, settings, cmd)


# ---------------------------------------------------------------- arming and flags

def _arm(armed: bool):
    def handler(r: redis.Redis, settings, cmd: Command) -> dict:
        raw_home, raw_auto = r.mget([keys.HOME, keys.AUTO_DETECT_STATUS])
        home = _decode(raw_home, [])
        manual = {"state": armed, "home": home if isinstance(home, list) else [],
                  "time": time.time(), "user_id": cmd.user_id}
        with r.pipeline(transaction=True) as p:  # both or neither
            state.set_flag(p, keys.CAMERA_STATUS, armed)
            state.set_json(p, keys.MANUAL_OVERRIDE, manual)
            p.execute()
        log.info("%s by %s", "Armed" if armed else "Disarmed", cmd.user_id)
        text = "pycam is *armed*." if armed else "pycam is *disarmed*."
        if _decode(raw_auto, False) is True:
            text += " Auto mode is on: presence takes over again when someone arrives or leaves."
        return ephemeral(text)
    return handler


def _flag(key: str, value: bool, text: str):
    def handler(r: redis.Redis, settings, cmd: Command) -> dict:
        state.set_flag(r, key, value)
        log.info("%s set to %s by %s", key, value, cmd.user_id)
        return ephemeral(text)
    return handler


# ---------------------------------------------------------------- status

def expected_processes(settings) -> list[str]:
    """The processes that should be running with these settings (for /pycam_status and /healthz)."""
    expected = ["security_system", "notifier", "flask_app"]
    if settings.presence.people:
        expected.append("who_is_home")
    if settings.s3.bucket:
        expected.append("s3_upload")
    return expected


def is_stale(beat: dict | None, ttl: float, now: float) -> bool:
    """A heartbeat is stale when missing, malformed or older than the TTL."""
    return not isinstance(beat, dict) or not isinstance(beat.get("time"), (int, float)) or now - beat["time"] > ttl


def _ago(seconds: float) -> str:
    seconds = max(0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h ago"
    return f"{seconds / 86400:.0f} days ago"


def _mb(n: int) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _last_event(entries: list) -> dict | None:
    """Metadata of the newest entry on the events stream (from XREVRANGE ... COUNT 1)."""
    for _id, fields in entries:
        meta = _decode(fields.get("event"))
        return meta if isinstance(meta, dict) else None
    return None


_disk_cache: dict[str, tuple[float, int]] = {}
DISK_CACHE_S = 60.0


def data_folder_size(path, now: float) -> int:
    """Bytes under the data folder, walked at most once a minute per worker (it can hold 10^4 files)."""
    cached = _disk_cache.get(str(path))
    if cached and now - cached[0] < DISK_CACHE_S:
        return cached[1]
    size = utils.folder_size(path)
    _disk_cache[str(path)] = (now, size)
    return size


def _presence_line(presence, now: float) -> str | None:
    """"Presence: router: ok, lan: error (timeout) (polled 10 s ago)" from who_is_home's last poll."""
    if not isinstance(presence, dict) or not isinstance(presence.get("providers"), dict):
        return None
    parts = []
    for name, provider in presence["providers"].items():
        provider = provider if isinstance(provider, dict) else {}
        parts.append(f"{name}: ok" if provider.get("ok") else f"{name}: error ({provider.get('error')})")
    polled = presence.get("time")
    return "Presence: " + ", ".join(parts) + (
        f" (polled {_ago(now - polled)})" if isinstance(polled, (int, float)) else "")


def _manual_holds(manual, armed: bool, home) -> bool:
    """The arming state comes from a /pycam_on|off that still holds (`home` unchanged since)."""
    return (isinstance(manual, dict) and manual.get("state") == armed and isinstance(manual.get("home"), list)
            and isinstance(home, list) and set(map(str, manual["home"])) == set(map(str, home)))


STATUS_KEYS = [keys.CAMERA_STATUS, keys.CAMERA_NOTIFICATIONS, keys.AUTO_DETECT_STATUS, keys.TRAINING_MODE,
               keys.MANUAL_OVERRIDE, keys.HOME, keys.UNVERIFIED_COUNT, keys.S3_STATUS, keys.PRESENCE_STATUS]


def status_text(r: redis.Redis, settings, now: float | None = None) -> str:
    """The /pycam_status report (one Redis round trip)."""
    now = time.time() if now is None else now
    with r.pipeline(transaction=False) as p:
        p.mget(STATUS_KEYS + [keys.heartbeat(name) for name in keys.PROCESSES])
        p.xrevrange(keys.EVENTS, count=1)
        raw, newest = p.execute()
    v = dict(zip(STATUS_KEYS, raw))
    flag = {k: _decode(v[k], keys.FLAG_DEFAULTS[k]) in (True, "true", "True", 1) for k in keys.FLAG_DEFAULTS}
    beats = {name: _decode(b) for name, b in zip(keys.PROCESSES, raw[len(STATUS_KEYS):])}
    yes = {True: "on", False: "off"}
    armed, manual, home = flag[keys.CAMERA_STATUS], _decode(v[keys.MANUAL_OVERRIDE]), _decode(v[keys.HOME], [])
    lines = ["*pycam status*",
             f"Armed: {'*yes*' if armed else '*no*'}"
             + (" (set by hand)" if _manual_holds(manual, armed, home) else ""),
             f"Notifications: {yes[flag[keys.CAMERA_NOTIFICATIONS]]}",
             f"Auto mode: {yes[flag[keys.AUTO_DETECT_STATUS]]}",
             f"Training mode: {yes[flag[keys.TRAINING_MODE]]}",
             "Home: " + (", ".join(map(str, home)) if isinstance(home, list) and home else "nobody")]
    presence = _presence_line(_decode(v[keys.PRESENCE_STATUS]), now)
    if presence:
        lines.append(presence)
    event = _last_event(newest)
    if event and isinstance(event.get("time"), (int, float)):
        lines.append(f"Last event: {slack_messages.when(event['time'])} ({_ago(now - event['time'])})")
    else:
        lines.append("Last event: none yet")
    if v[keys.UNVERIFIED_COUNT]:
        lines.append(f"Events the verifier held back: {v[keys.UNVERIFIED_COUNT]}")
    lines.append("Processes:")
    expected = expected_processes(settings)
    for name in keys.PROCESSES:
        beat = beats.get(name)
        if not isinstance(beat, dict):
            if name in expected:  # a process that is not configured here and not running is not listed
                lines.append(f"  • {name}: *not running* (no heartbeat)")
            continue
        age = now - beat["time"] if isinstance(beat.get("time"), (int, float)) else float("inf")
        stale = " *STALE*" if is_stale(beat, settings.heartbeat_ttl_s, now) else ""
        detail = beat.get("detail")
        lines.append(f"  • {name}: {beat.get('state', '?')}, {_ago(age)}{stale}"
                     + (f" ({detail})" if detail not in (None, "", {}) else ""))
    s3 = _decode(v[keys.S3_STATUS])
    if isinstance(s3, dict):
        lines.append(f"S3: {'ok' if s3.get('ok') else 'error: ' + str(s3.get('error'))}, "
                     f"{s3.get('pending', '?')} pending, {s3.get('uploaded', '?')} uploaded")
    disk = f"Disk: data folder {_mb(data_folder_size(settings.data_dir, now))}"
    try:
        disk += f", {_mb(shutil.disk_usage(settings.data_dir).free)} free"
    except OSError:
        pass
    lines.append(disk)
    temp = utils.cpu_temperature()
    if temp is not None:
        lines.append(f"CPU temperature: {temp:.1f} °C")
    return "\n".join(lines)


def cmd_status(r: redis.Redis, settings, cmd: Command) -> dict:
    return ephemeral(status_text(r, settings))


# ---------------------------------------------------------------- latest snapshot and rotate

def cmd_latest(r: redis.Redis, settings, cmd: Command) -> dict:
    latest = state.get_json(r, keys.LATEST_IMAGE)
    if not isinstance(latest, dict) or not events.is_event_id(latest.get("event_id")):
        return ephemeral("No snapshot yet.")
    event_id = latest["event_id"]
    # The path comes from the id (never from the stored value), so it cannot leave the data dir.
    snapshot = events.event_files(settings.data_dir, event_id)["snapshot"]
    if not snapshot.is_file():
        return ephemeral("The latest snapshot is no longer stored (retention deleted it).")
    taken = slack_messages.when(latest.get("time"))
    outbox.enqueue(r, outbox.make_job(
        "image_response", response_url=cmd.response_url,
        snapshot=str(snapshot.relative_to(settings.data_dir)),
        text=f"Latest snapshot ({taken}) posted in the channel."))
    return ephemeral(f"Posting the latest snapshot ({taken})...")


ANGLE_RE = re.compile(r"^[+-]?\d{1,3}$")


def cmd_rotate(r: redis.Redis, settings, cmd: Command) -> dict:
    args = cmd.text.split()
    position = state.get_json(r, keys.PANTILT_POSITION)
    present = isinstance(position, dict) and position.get("present") is True
    if not args:
        if not present:
            return ephemeral(NO_HAT)
        reported = position.get("time")
        return ephemeral(f"The camera points at pan {position.get('pan')}, tilt {position.get('tilt')}"
                         + (f" (reported {_ago(time.time() - reported)})." if isinstance(reported, (int, float))
                            else "."))
    if len(args) != 2 or not all(ANGLE_RE.match(a) for a in args):
        return ephemeral(ROTATE_USAGE)
    pan, tilt = int(args[0]), int(args[1])
    if not (-90 <= pan <= 90 and -90 <= tilt <= 90):
        return ephemeral(ROTATE_USAGE)
    if not present:
        return ephemeral(NO_HAT)
    state.set_json(r, keys.PANTILT, {"pan": pan, "tilt": tilt})
    log.info("Pan-tilt target pan=%d tilt=%d set by %s", pan, tilt, cmd.user_id)
    return ephemeral(f"Moving the camera to pan {pan}, tilt {tilt}. It re-learns the scene "
                     "afterwards, so the move raises no alert.")


def cmd_help(r: redis.Redis, settings, cmd: Command) -> dict:
    return ephemeral(HELP)


HANDLERS: dict[str, Callable[[redis.Redis, object, Command], dict]] = {
    "on": _arm(True),
    "off": _arm(False),
    "status": cmd_status,
    "latest": cmd_latest,
    "notifications_on": _flag(keys.CAMERA_NOTIFICATIONS, True, "Notifications are *on*."),
    "notifications_off": _flag(keys.CAMERA_NOTIFICATIONS, False, "Notifications are *off*: events are still recorded."),
    "auto_detect_on": _flag(keys.AUTO_DETECT_STATUS, True,
                            "Auto mode is *on*: pycam arms when everyone has left and disarms when someone is home."),
    "auto_detect_off": _flag(keys.AUTO_DETECT_STATUS, False, "Auto mode is *off*: only commands arm and disarm."),
    "training_on": _flag(keys.TRAINING_MODE, True, "Training mode is *on*: alerts carry Occupied / Unoccupied buttons."),
    "training_off": _flag(keys.TRAINING_MODE, False, "Training mode is *off*."),
    "rotate": cmd_rotate,
    "help": cmd_help,
}
# Slash command names (as registered in slack-app-manifest.yml) that differ from their subcommand.
SLASH_ALIASES = {"pycam_on": "on", "pycam_off": "off", "pycam_status": "status", "pycam_latest": "latest",
                 "pycam_help": "help"}


# ---------------------------------------------------------------- buttons

@dataclass(frozen=True)
class LabelClick:
    """An Occupied / Unoccupied click, validated."""
    event_id: str
    label: str
    user_id: str
    user_name: str
    response_url: str


def parse_label_click(payload: object) -> LabelClick | None:
    """The click inside a block_actions payload, or None when anything about it is off."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        return None
    actions, user = payload.get("actions"), payload.get("user")
    if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
        return None
    if not isinstance(user, dict) or not isinstance(user.get("id"), str):
        return None
    label = slack_messages.LABEL_ACTIONS.get(actions[0].get("action_id"))
    event_id = actions[0].get("value")
    response_url = payload.get("response_url")
    # The id is checked against a strict pattern before it comes near a path.
    if label is None or not events.is_event_id(event_id) or not isinstance(response_url, str):
        return None
    name = user.get("username") or user.get("name") or user["id"]
    return LabelClick(event_id, label, user["id"], str(name), response_url)


def label_event(r: redis.Redis, settings, click: LabelClick) -> bool:
    """Store the label and queue the rewrite of the alert; False when the event is no longer stored."""
    files = events.event_files(settings.data_dir, click.event_id)
    if not (files["clean"].is_file() and files["meta"].is_file()):
        outbox.enqueue(r, outbox.make_job(
            "response", response_url=click.response_url, replace_original=False, response_type="ephemeral",
            text="That event is no longer stored (retention deleted it), so it was not labelled."))
        return False
    try:
        labels.record_label(settings.data_dir, click.event_id, click.label, click.user_id, click.user_name)
    except FileNotFoundError:  # deleted between the check and the copy
        return False
    meta = utils.read_json_file(files["meta"], {})
    text = slack_messages.alert_text(meta.get("camera") or settings.camera.name, meta.get("time"), meta.get("area"))
    log.info("Event %s labelled %s by %s", click.event_id, click.label, click.user_id)
    outbox.enqueue(r, outbox.make_job(
        "response", response_url=click.response_url, replace_original=True,
        text=f"{text}. Tagged {click.label} by @{click.user_name}",
        blocks=slack_messages.tagged_blocks(text, click.event_id, click.label, click.user_id)))
    return True
