"""Who may do what in Redis: the ACL user a camera Pi connects to the hub's Redis with.

A camera Pi on the LAN holds its password in its REDIS_URL (redis://camera-front:...@hub:6379/0).
Its user may run only the commands its camera daemon runs, on only the keys it reads and writes
(the switches, its heartbeat, events, the outbox, stories, alarms, the live view, its own
camera:<name>:* keys), plus what its notifier runs on its own outbox, on those keys alone (Redis 7
selectors): it cannot read or take the home's jobs or delivery marks, change who is home, flush
the database or reconfigure the server.
`pycam camera-user NAME` creates one on the hub.
"""
from __future__ import annotations

import re
import secrets

from app import cameras, keys

USER_PREFIX = "camera-"
NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
# What the camera daemon runs (app/camera/, and the core modules it calls), what the notifier
# of a camera Pi runs on its own outbox (app/slack/), and what redis-py sends when it connects
# (its CLIENT SETINFO, on Redis 7.2 and later, is refused and ignored).
COMMANDS = ("ping", "hello", "client|setname", "multi", "exec", "discard",
            "get", "mget", "set", "exists", "incr", "expire", "hset", "hdel", "hgetall", "hget", "hmget", "hincrby",
            "hexists", "lpush", "ltrim", "xadd", "publish")
# What its notifier runs on its own outbox and marks, and on those keys only (a Redis 7 selector):
# it can never read, take or delete the home's jobs (slash commands' response URLs among them).
OWN_COMMANDS = ("get", "set", "exists", "expire", "del", "hset", "hdel", "hgetall", "hexists", "lindex", "lpop",
                "rpush", "xadd", "xgroup|create", "xreadgroup", "xack", "xrange")
# The keys it reads and writes; it sets camera_status only to restore it (or with --arm).
KEYS = (keys.CAMERA_STATUS, keys.CAMERA_NOTIFICATIONS, keys.TRAINING_MODE, keys.AUTO_DETECT_STATUS,
        keys.PANTILT, keys.PANTILT_POSITION, keys.SCHEDULE, keys.LIVE_VIEWER, keys.heartbeat("security_system"),
        keys.EVENTS, keys.LATEST_IMAGE, keys.UNVERIFIED_COUNT, keys.SLACK_OUTBOX, "story:*",
        keys.event_published("*"), keys.ALARMS, keys.ALARMS_LOG, keys.CAMERAS)


def keys_for(camera: str) -> list[str]:
    """The keys the camera called `camera` may use: the shared ones and its own (camera:<name>:*)."""
    return list(KEYS) + [keys.camera(camera, "*"), keys.heartbeat(cameras.sender(camera))]
CHANNELS = (keys.LIVE_FRAMES,)


def own_selector(camera: str) -> str:
    """The selector that lets a camera Pi's notifier use its own outbox (camera:<name>:*)."""
    return "(" + " ".join([f"~{keys.camera(camera, '*')}", f"~{keys.heartbeat(cameras.sender(camera))}"]
                          + [f"+{c}" for c in OWN_COMMANDS]) + ")"


def user_name(camera: str) -> str:
    if not NAME.fullmatch(camera or ""):
        raise ValueError("a camera name is 1 to 40 letters, digits, - or _")
    return USER_PREFIX + camera


def create(admin_r, camera: str) -> str:
    """Create (or replace) the camera's user on the hub; returns its new password."""
    password = secrets.token_urlsafe(24)
    admin_r.acl_setuser(user_name(camera), reset=True, enabled=True, passwords=[f"+{password}"],
                        commands=["-@all"] + [f"+{c}" for c in COMMANDS], keys=keys_for(camera),
                        channels=list(CHANNELS), selectors=[])
    admin_r.execute_command("ACL", "SETUSER", user_name(camera), own_selector(camera))
    return password


def persist(admin_r) -> str | None:
    """Keep the users across a restart of the hub's Redis: its ACL file, else its config file;
    None when saved, else why not (the user lives until Redis restarts)."""
    for save in (admin_r.acl_save, admin_r.config_rewrite):
        try:
            save()
            return None
        except Exception as e:          # no aclfile, or no config file: try the next, then say why
            why = str(e)
    return why
