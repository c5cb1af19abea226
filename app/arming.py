"""Who armed the camera: `camera_status` and the manual override beside it (`presence:manual`).

A /pycam_on or /pycam_off writes both in one transaction; who_is_home then leaves the armed flag
alone while the override holds, that is while `home` is exactly what it was when the command was
given (compared as sets) and the same schedule window is open (or none). Both sides, and
/pycam_status, use `manual_holds` below.
"""
from __future__ import annotations

import time

from app import cameras, keys, state


def manual_holds(manual, home, window: str | None = None) -> bool:
    """Whether a manual /pycam_on|off still holds. Given inside a schedule window, it holds until
    that window closes (someone coming home meanwhile must not re-arm the camera they disarmed);
    given outside one, until `home` differs from what it was then, or a window opens."""
    if not isinstance(manual, dict) or manual.get("window") != window:
        return False
    if window is not None:
        return True
    return (isinstance(manual.get("home"), list) and isinstance(home, list)
            and set(map(str, manual["home"])) == set(map(str, home)))


def armed_by_hand(manual, armed: bool, home, window: str | None = None) -> bool:
    """The current arming state comes from a manual command that still holds."""
    return manual_holds(manual, home, window) and manual.get("state") == armed


def set_by_hand(r, armed: bool, user_id: str, now: float | None = None, window: str | None = None) -> bool:
    """Arm or disarm for a person (flag and override together, with the schedule window open now);
    True when auto mode is on."""
    raw_home, raw_auto = r.mget([keys.HOME, keys.AUTO_DETECT_STATUS])
    home = state.decode_json(raw_home, [])
    manual = {"state": armed, "home": home if isinstance(home, list) else [],
              "time": time.time() if now is None else now, "user_id": user_id, "window": window}
    names = list(r.hkeys(keys.CAMERAS))
    with r.pipeline(transaction=True) as p:  # all or nothing
        state.set_flag(p, keys.CAMERA_STATUS, armed)
        state.set_json(p, keys.MANUAL_OVERRIDE, manual)
        cameras.clear_overrides(p, names)    # home-wide: every camera, whatever was set for one
        p.execute()
    return state.decode_flag(keys.AUTO_DETECT_STATUS, raw_auto)
