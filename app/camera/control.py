"""The camera daemon's control from Redis: a link that never stalls the frame loop, and the
switches it obeys (armed, notifications, training mode, the pan-tilt target, a live viewer).

Redis being down never stops the camera: calls fail fast and are not retried for a second; the
last switches read stay in force, and recorded events wait (app/camera/publisher.py).
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from app import cameras, keys, state, utils
from app.backoff import Backoff

log = logging.getLogger("security_system")
RETRY_S = 1.0   # flat: a failed call costs the frame loop a connect timeout, so not more often than this


class RedisLink:
    """Runs Redis calls for the frame loop: a failure marks Redis down and skips calls for RETRY_S."""

    def __init__(self, r):
        self.r = r
        self.ok = False
        self.tried = False
        self.refused: str | None = None   # why Redis refused this client (wrong password, no right)
        self.backoff = Backoff(RETRY_S, RETRY_S)

    def call(self, fn, *args, **kwargs):
        """fn(*args) or None when Redis is (or was very recently) unreachable."""
        if not self.ok and not self.backoff.ready():
            return None
        try:
            result = fn(*args, **kwargs)
        except state.REFUSED as e:
            if self.refused != str(e):      # said once per kind, not once a frame
                if isinstance(e, redis.AuthenticationError):
                    log.error("Redis refused the camera (%s): check the user and password in REDIS_URL (on the "
                              "hub, `pycam camera-user NAME` makes them). The camera keeps recording", e)
                else:
                    log.error("Redis refused the camera a command (%s): its user is for another camera, or "
                              "PYCAM_CAMERA_NAME is not the name `pycam camera-user` was given. The camera keeps "
                              "recording", e)
            self.refused = str(e)
            if isinstance(e, redis.AuthenticationError):     # a wrong password: nothing will pass
                self.ok, self.tried = False, True
                self.backoff.failed()
            return None
        except state.REDIS_DOWN as e:
            if self.ok or not self.tried:
                log.warning("Redis unreachable (%s); the camera keeps recording", type(e).__name__)
            self.ok, self.tried = False, True
            self.backoff.failed()
            return None
        if not self.ok:
            log.info("Redis reachable")
            self.ok, self.tried = True, True
            self.backoff.reset()
        return result


@dataclass
class Switches:
    """What the owner asked for, as last read from Redis."""
    armed: bool = False
    armed_known: bool = True      # False: Redis had no camera_status (it came back empty, or first run)
    notifications: bool = True
    training: bool = False
    pantilt_target: object = None
    schedule: str | None = None   # the schedule set from Slack, as stored (None: pycam.yaml's)
    watched: bool = False         # someone watches the live view (app/live.py)
    home: bool = False            # the home-wide camera_status, as read
    own: bool | None = None       # this camera's own override (app/cameras.py), as read


CONTROL_KEYS = (keys.CAMERA_STATUS, keys.CAMERA_NOTIFICATIONS, keys.TRAINING_MODE, keys.PANTILT, keys.SCHEDULE,
                keys.LIVE_VIEWER)


def read_switches(r, camera: str) -> Switches:
    """The switches in one round trip (flags decoded by the one rule in app.state): the home-wide
    ones, and what is set for this camera alone (its armed override, its pan-tilt target)."""
    raw = r.mget(CONTROL_KEYS + (keys.camera(camera, "armed"), keys.camera(camera, "pantilt")))
    home_armed = state.decode_flag(keys.CAMERA_STATUS, raw[0])
    own = state.decode_json(raw[6])
    own = own if isinstance(own, bool) else None
    own_target = state.decode_json(raw[7])
    return Switches(armed=cameras.effective(home_armed, own), armed_known=raw[0] is not None, home=home_armed, own=own,
                    notifications=state.decode_flag(keys.CAMERA_NOTIFICATIONS, raw[1]),
                    training=state.decode_flag(keys.TRAINING_MODE, raw[2]),
                    pantilt_target=own_target if own_target is not None else state.decode_json(raw[3]),
                    schedule=raw[4], watched=raw[5] is not None)


class ArmedMemory:
    """The armed state on disk (<data dir>/armed.json), so the camera fails armed, not disarmed:
    it is what the daemon starts with while Redis is down, and what it restores when Redis comes
    back without its data."""

    def __init__(self, data_dir: Path, camera: str | None = None):
        # Several cameras on one Pi share the data dir: a file each (armed@<name>.json).
        self.path = Path(data_dir) / (f"armed@{camera}.json" if camera else "armed.json")

    def load(self) -> bool | None:
        value = utils.read_json_file(self.path)
        return value.get("armed") if isinstance(value, dict) and isinstance(value.get("armed"), bool) else None

    def load_home(self) -> tuple[bool | None, bool | None]:
        """(the home-wide flag, this camera's own override) as last seen: what a Redis that lost
        its data gets back (an older file has only `armed`, which was both)."""
        value = utils.read_json_file(self.path)
        if not isinstance(value, dict):
            return None, None
        home = value.get("home", value.get("armed"))
        own = value.get("own")
        return (home if isinstance(home, bool) else None), (own if isinstance(own, bool) else None)

    def save(self, armed: bool, home: bool | None = None, own: bool | None = None) -> None:
        try:
            utils.atomic_write_json(self.path, {"armed": armed, "home": armed if home is None else home,
                                                "own": own, "time": time.time()})
        except OSError as e:   # a full disk must not stop the camera
            log.warning("Cannot remember the armed state on disk: %s", e.strerror or e)
