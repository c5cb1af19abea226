"""The Raspberry Pi firmware's power report: under-voltage and throttling, now.

The firmware publishes `get_throttled` (what `vcgencmd get_throttled` prints) as a hex bitmask in
sysfs. Bits 0-3 are the state now: under-voltage, ARM frequency capped, throttled, soft
temperature limit. The file is absent off a Pi: then there is nothing to report.
"""
from __future__ import annotations

import glob
from pathlib import Path

PATTERNS = ("/sys/devices/platform/soc/soc:firmware/get_throttled",
            "/sys/devices/platform/*/*firmware*/get_throttled",
            "/sys/devices/platform/*firmware*/get_throttled")
UNDER_VOLTAGE, FREQ_CAPPED, THROTTLED, SOFT_TEMP = 1, 2, 4, 8


def find() -> Path | None:
    """The firmware's report on this Pi, or None elsewhere."""
    for pattern in PATTERNS:
        found = sorted(glob.glob(pattern))
        if found:
            return Path(found[0])
    return None


def read(path: Path | None) -> dict[str, bool] | None:
    """{under_voltage, throttled} now (throttled: frequency capped, throttled or at the soft
    temperature limit), or None when there is no report."""
    if path is None:
        return None
    try:
        bits = int(path.read_text().strip(), 16)
    except (OSError, ValueError):
        return None
    return {"under_voltage": bool(bits & UNDER_VOLTAGE),
            "throttled": bool(bits & (FREQ_CAPPED | THROTTLED | SOFT_TEMP))}
