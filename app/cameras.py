"""Several cameras on one Redis: who they are, and what is set for one camera alone.

Each camera daemon beats into the `cameras` hash under its `camera.name`; /pycam_status lists them.
The home-wide switches keep their names (`camera_status`...); `camera:<name>:armed` (JSON bool)
overrides `camera_status` for one camera, set by `/pycam_on NAME` or `/pycam_off NAME` and cleared
by the next home-wide change (a command without a name, or presence), so "the next change wins"
holds for a camera as for the home.
"""
from __future__ import annotations

import json
import time

from app import keys, state


def beat(r, name: str, status: str, armed: bool, sends: bool = False) -> None:
    """`sends`: a camera Pi, whose own notifier sends its events (app/outbox.py)."""
    r.hset(keys.CAMERAS, name, json.dumps({"time": time.time(), "state": status, "armed": armed, "sends": sends}))


def sender(name: str) -> str:
    """The heartbeat name of a camera Pi's notifier."""
    return f"notifier@{name}"


def known(r) -> dict[str, dict]:
    """{name: {time, state, armed}} of every camera that ever beat here, by name."""
    out = {}
    for name, raw in sorted(r.hgetall(keys.CAMERAS).items()):
        value = state.decode_json(raw)
        if isinstance(value, dict):
            out[name] = value
    return out


def effective(home_armed: bool, override) -> bool:
    """A camera is armed by its own override when one is set, else by the home-wide switch."""
    return override if isinstance(override, bool) else home_armed


def set_armed(r, name: str, armed: bool) -> None:
    state.set_json(r, keys.camera(name, "armed"), armed)


def clear_overrides(r, names) -> None:
    """A home-wide change: every camera follows `camera_status` again (r may be a pipeline)."""
    names = list(names)
    if names:
        r.delete(*[keys.camera(n, "armed") for n in names])


OWN = ("armed", "pantilt", "position", "latest")


def forget(r, name: str) -> bool:
    """A camera renamed or taken away: out of the list, its own keys and alarms gone; False when
    no camera had that name."""
    with r.pipeline(transaction=True) as p:
        p.hdel(keys.CAMERAS, name)
        p.delete(*[keys.camera(name, what) for what in OWN])
        p.hdel(keys.ALARMS, *[f"{what}@{name}" for what in ("camera_view", "camera_source", "disk_writes",
                                                             "disk_low")], f"camera:{name}")
        removed = p.execute()[0]
    return bool(removed)
