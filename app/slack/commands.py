"""What each slash command and button does: small functions over Redis, each returning Slack JSON.

Every answer is ephemeral and immediate (a few Redis calls). Anything slow, such as uploading the
latest snapshot or rewriting an alert after a click, becomes an outbox job for the notifier.
"""
from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Callable

import redis

from datetime import datetime

from app import arming, cameras, keys, outbox, schedule, state
from app.slack import messages, status
from app.slack.messages import ephemeral
from app.storage import events

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
ROTATE_USAGE = ("Usage: `/rotate [CAMERA] PAN TILT`, two whole numbers of degrees from -90 to 90 "
                "(e.g. `/rotate 30 -10`, or `/rotate front 30 -10` for one camera). `/rotate` alone shows "
                "where the camera points.")
HELP = "\n".join([
    "*pycam commands* (each also works as `/pycam <command>`, e.g. `/pycam status`):",
    "`/pycam_on`, `/pycam_off`: arm or disarm (wins over presence and the schedule until someone arrives "
    "or leaves, or a schedule window opens or closes); `/pycam_off garage`: one camera alone",
    "`/pycam_schedule`: arm windows and quiet hours (`/pycam_schedule help`)",
    "`/pycam_status`: what pycam is doing",
    "`/pycam_latest [CAMERA]`: the latest snapshot (of one camera)",
    "`/pycam_live`: what the camera sees now (and a link to the live view)",
    "`/pycam_events [N]`: the last events and what became of each (sent, held back, quiet hours)",
    "`/notifications_on`, `/notifications_off`: alerts in Slack (events are recorded either way)",
    "`/auto_detect_on`, `/auto_detect_off`: arm when everyone has left, disarm when someone is home",
    "`/training_on`, `/training_off`: Occupied / Unoccupied buttons on alerts",
    "`/rotate [CAMERA] PAN TILT`: point the camera (degrees, -90..90); `/rotate` alone shows where it points",
])


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

def _one_camera(r: redis.Redis, words: list[str], angles: bool = False) -> tuple[str | None, str | None]:
    """(camera, None) when the first word names a camera that beats here, (None, why not) when it
    names none, (None, None) when there is no name (the command is for every camera). With
    `angles`, a first word that is a number is an angle, not a name (/rotate)."""
    if not words:
        return None, None
    names = cameras.known(r)
    if angles and ANGLE_RE.match(words[0]) and words[0] not in names:
        return None, None
    if words[0] in names:
        return words[0], None
    return None, (f"No camera is called {words[0]!r}. Cameras: {', '.join(names) or 'none has started yet'}.")


def _arm(armed: bool):
    def handler(r: redis.Redis, settings, cmd: Command) -> dict:
        words = cmd.text.split()
        camera, why = _one_camera(r, words)
        if why or len(words) > 1:
            return ephemeral(why or f"Usage: `/pycam_{'on' if armed else 'off'} [CAMERA]`")
        if camera:
            # This camera alone, until the next home-wide change (a command without a name, presence).
            cameras.set_armed(r, camera, armed)
            log.info("Camera %s %s by %s", camera, "armed" if armed else "disarmed", cmd.user_id)
            return ephemeral(f"Camera {camera} is *{'armed' if armed else 'disarmed'}*; the others are as they "
                             "were. The next change for the whole home applies to it again.")
        window = schedule.open_window(schedule.read(r, settings.schedule)["arm"], datetime.now())
        auto = arming.set_by_hand(r, armed, cmd.user_id, window=window)
        log.info("%s by %s", "Armed" if armed else "Disarmed", cmd.user_id)
        text = "pycam is *armed*." if armed else "pycam is *disarmed*."
        if auto:
            text += " Auto mode is on: presence takes over again when someone arrives or leaves."
        return ephemeral(text)
    return handler


def _flag(key: str, value: bool, text: str):
    def handler(r: redis.Redis, settings, cmd: Command) -> dict:
        state.set_flag(r, key, value)
        log.info("%s set to %s by %s", key, value, cmd.user_id)
        return ephemeral(text)
    return handler


def cmd_status(r: redis.Redis, settings, cmd: Command) -> dict:
    return ephemeral(status.status_text(r, settings))


# ---------------------------------------------------------------- latest snapshot and rotate

def cmd_latest(r: redis.Redis, settings, cmd: Command) -> dict:
    words = cmd.text.split()
    camera, why = _one_camera(r, words)
    if why or len(words) > 1:
        return ephemeral(why or "Usage: `/pycam_latest [CAMERA]`")
    latest = state.get_json(r, keys.camera(camera, "latest") if camera else keys.LATEST_IMAGE)
    if not isinstance(latest, dict) or not events.is_event_id(latest.get("event_id")):
        return ephemeral("No snapshot yet.")
    event_id = latest["event_id"]
    # The path comes from the id (never from the stored value), so it cannot leave the data dir.
    snapshot = events.event_files(settings.data_dir, event_id)["snapshot"]
    box = outbox.box(latest.get("box"))     # a camera Pi's snapshot is sent from that Pi
    if box == outbox.HOME and not snapshot.is_file():
        return ephemeral("The latest snapshot is no longer stored (retention deleted it).")
    taken = messages.when(latest.get("time"))
    outbox.enqueue(r, outbox.make_job(
        "image_response", response_url=cmd.response_url,
        snapshot=str(snapshot.relative_to(settings.data_dir)),
        text=f"Latest snapshot ({taken}) posted in the channel."), box)
    if box != outbox.HOME and not r.exists(keys.heartbeat(cameras.sender(latest["box"]))):
        return ephemeral(f"Camera {latest['box']}'s Pi is not sending now (its notifier is not running): "
                         "the latest snapshot is posted when it is back.")
    return ephemeral(f"Posting the latest snapshot ({taken})...")


ANGLE_RE = re.compile(r"^[+-]?\d{1,3}$")


def cmd_rotate(r: redis.Redis, settings, cmd: Command) -> dict:
    args = cmd.text.split()
    camera, why = _one_camera(r, args, angles=True)
    if why:
        return ephemeral(f"{ROTATE_USAGE}\n{why}")
    if camera:
        args = args[1:]
    position = state.get_json(r, keys.camera(camera, "position") if camera else keys.PANTILT_POSITION)
    present = isinstance(position, dict) and position.get("present") is True
    if not args:
        if not present:
            return ephemeral(NO_HAT)
        reported = position.get("time")
        return ephemeral(f"The camera points at pan {position.get('pan')}, tilt {position.get('tilt')}"
                         + (f" (reported {status.ago(time.time() - reported)})." if isinstance(reported, (int, float))
                            else "."))
    if len(args) != 2 or not all(ANGLE_RE.match(a) for a in args):
        return ephemeral(ROTATE_USAGE)
    pan, tilt = int(args[0]), int(args[1])
    if not (-90 <= pan <= 90 and -90 <= tilt <= 90):
        return ephemeral(ROTATE_USAGE)
    if not present:
        return ephemeral(NO_HAT)
    # One camera's own target, or every camera's (each reads its own before the home-wide one).
    targets = [keys.camera(camera, "pantilt")] if camera else [keys.PANTILT] + [
        keys.camera(n, "pantilt") for n in cameras.known(r)]
    with r.pipeline(transaction=True) as p:
        for key in targets:
            state.set_json(p, key, {"pan": pan, "tilt": tilt})
        p.execute()
    log.info("Pan-tilt target pan=%d tilt=%d set by %s", pan, tilt, cmd.user_id)
    return ephemeral(f"Moving the camera to pan {pan}, tilt {tilt}. It re-learns the scene "
                     "afterwards, so the move raises no alert.")


SCHEDULE_USAGE = "\n".join([
    "*Schedule* (the camera is armed when nobody is home or an arm window is open; quiet hours record "
    "events without sending them, health alerts still come):",
    "`/pycam_schedule`: show it",
    "`/pycam_schedule arm mon-fri 08:30-17:30`: add an arm window (days: daily, weekdays, weekends, "
    "mon..sun, lists and ranges; a window may run past midnight)",
    "`/pycam_schedule quiet daily 00:00-06:00`: add quiet hours (they win over arm windows)",
    "`/pycam_schedule clear arm|quiet|all`: remove windows",
    "`/pycam_schedule reset`: back to the windows in pycam.yaml",
])


def cmd_schedule(r: redis.Redis, settings, cmd: Command) -> dict:
    words = cmd.text.split()
    current = schedule.read(r, settings.schedule)
    if not words:
        return ephemeral(f"Schedule: {schedule.describe(current, datetime.now())}.")
    verb = words[0].lower()
    if verb in schedule.KINDS and len(words) >= 2:
        try:
            window = schedule.parse_window(" ".join(words[1:]))
        except schedule.ScheduleError as e:
            return ephemeral(f"{e}.\n{SCHEDULE_USAGE}")
        if window not in current[verb]:
            current[verb].append(window)
        schedule.save(r, current)
    elif verb == "clear" and len(words) == 2 and words[1].lower() in (*schedule.KINDS, "all"):
        for kind in schedule.KINDS:
            if words[1].lower() in (kind, "all"):
                current[kind] = []
        schedule.save(r, current)
    elif verb == "reset" and len(words) == 1:
        r.delete(keys.SCHEDULE)
        current = schedule.read(r, settings.schedule)
    else:
        return ephemeral(SCHEDULE_USAGE)
    log.info("Schedule set to %s by %s", current, cmd.user_id)
    auto = state.get_flag(r, keys.AUTO_DETECT_STATUS)
    return ephemeral(f"Schedule: {schedule.describe(current, datetime.now())}. "
                     + ("Presence checks it at each poll, so a window arms within `presence.poll_s`."
                        if auto else "Auto mode is *off*: windows arm nothing until `/auto_detect_on`."))


EVENTS_USAGE = "Usage: `/pycam_events [N]`, the last N events (1 to 50, default 10) with what became of each."


FATES = {"held": "held back by the verifier", "quiet": "recorded in quiet hours", "sent": "sent",
         "off": "not sent (notifications off)"}


def verdict(meta: dict) -> str:
    """What became of an event, for a person."""
    fate = events.fate(meta)
    return FATES[fate] + (" (verified)" if fate == "sent" and meta.get("verified") is True else "")


def cmd_events(r: redis.Redis, settings, cmd: Command) -> dict:
    """The last events with their verdicts: one the verifier held back is still there to see."""
    words = cmd.text.split()
    if len(words) > 1 or (words and not (words[0].isascii() and words[0].isdecimal() and 1 <= int(words[0]) <= 50)):
        return ephemeral(EVENTS_USAGE)
    count = int(words[0]) if words else 10
    lines = []
    for _, fields in r.xrevrange(keys.EVENTS, count=count):
        meta = state.decode_json(fields.get("event"))
        if not isinstance(meta, dict) or not events.is_event_id(meta.get("id")):
            continue
        area = meta.get("area")
        lines.append(f"• {messages.when(meta.get('time'))}: {verdict(meta)}"
                     + (f", {area:.1%} of the view" if isinstance(area, (int, float)) else "")
                     + f" (`{meta['id']}`)")
    if not lines:
        return ephemeral("No events yet.")
    return ephemeral(f"*The last {len(lines)} event{'s' * (len(lines) > 1)}*, newest first "
                     "(snapshots in the data dir's events/ folder):\n" + "\n".join(lines))


def cmd_live(r: redis.Redis, settings, cmd: Command) -> dict:
    """The camera's picture now: the notifier asks the camera for a frame and posts it."""
    link = f" Live view: {settings.web.url.rstrip('/')}/live" if settings.web.enabled and settings.web.url else ""
    if cmd.response_url:
        outbox.enqueue(r, outbox.make_job("live_image", response_url=cmd.response_url,
                                          text=f"{settings.camera.name} now."))
    return ephemeral("Asking the camera for its picture now; it follows in a few seconds." + link)


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
    "schedule": cmd_schedule,
    "events": cmd_events,
    "live": cmd_live,
    "help": cmd_help,
}
# Slash command names (as registered in slack-app-manifest.yml) that differ from their subcommand.
SLASH_ALIASES = {"pycam_on": "on", "pycam_off": "off", "pycam_status": "status", "pycam_latest": "latest",
                 "pycam_help": "help", "pycam_schedule": "schedule", "pycam_events": "events",
                 "pycam_live": "live"}
