"""How a device is written: MAC addresses and hostnames, normalised the one way every part compares them.

The settings validate people's devices with these, and the presence providers normalise what routers
and the LAN report with the same functions (app/presence/rules.py re-exports them).
"""
from __future__ import annotations

import re

_MAC_SEP = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$")
_MAC_BARE = re.compile(r"^[0-9a-f]{12}$|^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")
_HOSTNAME = re.compile(r"^[^\x00-\x1f\x7f]{1,64}$")


def normalize_mac(text: str) -> str | None:
    """'AA-BB-CC-DD-EE-FF', 'aabbccddeeff' or 'aabb.ccdd.eeff' -> 'aa:bb:cc:dd:ee:ff'; None if not a MAC."""
    t = str(text).strip().lower()
    if _MAC_SEP.match(t):
        return t.replace("-", ":")
    if _MAC_BARE.match(t):
        h = t.replace(".", "")
        return ":".join(h[i:i + 2] for i in range(0, 12, 2))
    return None


def normalize_hostname(text: str) -> str | None:
    """Hostnames compare case-insensitively, without a trailing dot; None when empty or unprintable."""
    t = str(text).strip().rstrip(".").lower()
    return t if _HOSTNAME.match(t) else None
