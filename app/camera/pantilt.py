"""The Pimoroni Pan-Tilt HAT, owned by the camera daemon (the only process that touches I2C).

Wraps the `pantilthat` library's class form, `PanTilt(i2c_bus=...)`, so tests can hand it a fake
bus. The library checks angles only after opening the bus, so we validate them ourselves.
"""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)

MIN_ANGLE, MAX_ANGLE = -90, 90
_reported: set[str] = set()  # reasons already logged, so a missing HAT is said once, not every poll


def _log_once(level: int, message: str, *args) -> None:
    text = message % args
    if text not in _reported:
        _reported.add(text)
        log.log(level, text)


def valid_angle(value: object) -> bool:
    """A whole number of degrees in -90..90 (bools are not numbers here)."""
    return isinstance(value, int) and not isinstance(value, bool) and MIN_ANGLE <= value <= MAX_ANGLE


class PanTiltHat:
    """Move the servos and read back where they are."""

    def __init__(self, driver) -> None:
        self._hat = driver  # a pantilthat.PanTilt that has been set up

    def move(self, pan: int, tilt: int) -> tuple[int, int]:
        """Point the camera; returns the position the HAT reports afterwards."""
        if not (valid_angle(pan) and valid_angle(tilt)):
            raise ValueError(f"pan and tilt must be whole degrees from {MIN_ANGLE} to {MAX_ANGLE}")
        self._hat.pan(pan)
        self._hat.tilt(tilt)
        return self.position()

    def position(self) -> tuple[int, int]:
        """(pan, tilt) in degrees, as the HAT's registers say."""
        return self._hat.get_pan(), self._hat.get_tilt()

    def close(self) -> None:
        """Stop driving the servos (they hold no position, draw no current and do not buzz)."""
        for servo in (1, 2):
            try:
                self._hat.servo_enable(servo, False)
            except OSError as e:
                log.warning("Could not disable servo %d: %s", servo, e)


def _open_bus():
    """SMBus(1) from python3-smbus (apt) or smbus2 (pip)."""
    try:
        from smbus import SMBus
    except ImportError:
        try:
            from smbus2 import SMBus
        except ImportError:
            raise ImportError("no smbus module (apt install python3-smbus, or pip install smbus2)") from None
    return SMBus(1)


def open_pantilt(cfg, i2c_bus=None) -> PanTiltHat | None:
    """The HAT when enabled and answering on I2C, else None (the reason is logged once)."""
    if cfg.enabled == "off":
        _log_once(logging.INFO, "Pan-tilt HAT disabled in the settings (pantilt.enabled: off)")
        return None
    # "on" means the owner expects a HAT: its absence is a warning, not an everyday fact.
    level = logging.WARNING if cfg.enabled == "on" else logging.INFO
    try:
        from pantilthat.pantilt import PanTilt
        hat = PanTilt(i2c_bus=i2c_bus if i2c_bus is not None else _open_bus())
        hat.setup()  # writes the config register: an OSError here means no HAT answered
        return PanTiltHat(hat)
    except ImportError as e:
        _log_once(level, "No pan-tilt HAT: %s", e)
    except FileNotFoundError:
        _log_once(level, "No pan-tilt HAT: /dev/i2c-1 is missing (not a Pi, or I2C not enabled in raspi-config)")
    except OSError as e:
        _log_once(level, "No pan-tilt HAT answering on I2C bus 1 (%s)", e)
    return None
