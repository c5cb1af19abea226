"""Health and tamper alerts: what the owner is told about the system itself (app/alarms.py)."""
from __future__ import annotations

from config_sections.base import Section
from config_sections.model import Field


class AlertsConfig(Section):
    source_lost_s: float = Field(10, ge=1, le=3600, description=(
        "Armed, tell the owner when the camera source has been lost this long, and when it is back."))
    covered: bool = Field(True, description=(
        "Armed, tell the owner when the picture suddenly goes uniform and stays so: the lens covered, "
        "blinded by a light, or the lights out in a room without infrared."))
    covered_s: float = Field(3, ge=1, le=600, description="How long the picture must stay uniform first.")
    disk_free_mb: float = Field(200, ge=0, description=(
        "Tell the owner when the data disk has less free space than this, or refuses writes."))
    processes: bool = Field(True, description=(
        "Tell the owner when a pycam process stops beating (heartbeat stale), and when it is back."))
    power: bool = Field(True, description=(
        "On a Raspberry Pi: tell the owner when the firmware reports under-voltage or throttling."))
