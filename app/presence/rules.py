"""Who is home, and whether to arm: pure logic, no I/O (app/presence/daemon.py does the I/O).

A person is home as soon as one of their devices is seen, and away only after none has been seen
for `consider_home_s` (phones drop off Wi-Fi while they sleep). A poll in which no working
provider can see any of a person's devices is "no data" for that person: it never counts as them
leaving, and while anyone is in that state the camera is not armed.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from app.arming import manual_holds
from config_sections.devices import normalize_hostname, normalize_mac

MAC, HOSTNAME = "mac", "hostname"

__all__ = ["MAC", "HOSTNAME", "normalize_mac", "normalize_hostname", "manual_holds", "Device", "parse_device",
           "mask_mac", "is_randomised", "Person", "Sightings", "Outcome", "Tracker", "Decision", "decide"]


@dataclass(frozen=True)
class Device:
    """One identifier a provider reported: a MAC address or a hostname."""
    kind: str
    value: str

    def __str__(self) -> str:
        return mask_mac(self.value) if self.kind == MAC else self.value


def parse_device(text: str) -> Device | None:
    """A MAC address when the text is one, else a hostname; None for blank or unprintable text."""
    mac = normalize_mac(text)
    if mac:
        return Device(MAC, mac)
    host = normalize_hostname(text)
    return Device(HOSTNAME, host) if host else None


def mask_mac(mac: str) -> str:
    """Only the last two octets, for logs: 'aa:bb:cc:dd:ee:ff' -> '…:ee:ff'."""
    return "…:" + ":".join(mac.split(":")[-2:])


def is_randomised(mac: str) -> bool:
    """True for a locally administered MAC (the 'private address' phones use per Wi-Fi network)."""
    return bool(int(mac[:2], 16) & 0x02)


@dataclass(frozen=True)
class Person:
    name: str
    devices: frozenset[Device]

    @classmethod
    def from_config(cls, name: str, devices: Iterable[str]) -> "Person":
        """Devices are already normalised by config.PersonConfig."""
        return cls(name, frozenset(Device(MAC, d) if normalize_mac(d) == d else Device(HOSTNAME, d)
                                   for d in devices))


@dataclass
class Sightings:
    """What one poll saw: devices from the providers that answered, and which kinds they can see."""
    devices: set[Device] = field(default_factory=set)
    kinds_ok: set[str] = field(default_factory=set)


@dataclass
class Outcome:
    """One poll's result: who is home now and what changed."""
    home: list[str]
    arrived: list[str]
    left: list[str]
    seen: list[str]
    no_data: list[str]

    @property
    def complete(self) -> bool:
        """Every person could be seen by at least one provider that answered."""
        return not self.no_data


class Tracker:
    """Per-person last-seen times and the home list, updated poll by poll with an explicit clock."""

    def __init__(self, people: list[Person], consider_home_s: float, now: float,
                 home: Iterable[str] = (), last_seen: dict[str, float] | None = None):
        self.people = people
        self.consider_home_s = consider_home_s
        names = {p.name for p in people}
        self.home = {n for n in home if n in names}
        self.last_seen = {n: t for n, t in (last_seen or {}).items() if n in names}
        # A person home when a poll had no data for them (or when we started, after a gap of
        # unknown length) gets the benefit of the doubt: their away clock starts again from then.
        self.unobserved_at = {n: now for n in self.home}

    def update(self, sightings: Sightings, now: float) -> Outcome:
        arrived, left, seen, no_data = [], [], [], []
        for person in self.people:
            name = person.name
            if person.devices & sightings.devices:
                seen.append(name)
                self.last_seen[name] = now
                self.unobserved_at.pop(name, None)
                if name not in self.home:
                    self.home.add(name)
                    arrived.append(name)
            elif not any(d.kind in sightings.kinds_ok for d in person.devices):
                no_data.append(name)
                if name in self.home:
                    self.unobserved_at[name] = now
            elif name in self.home:
                since = max(self.last_seen.get(name, 0.0), self.unobserved_at.get(name, 0.0))
                if now - since >= self.consider_home_s:
                    self.home.discard(name)
                    self.unobserved_at.pop(name, None)
                    left.append(name)
        order = [p.name for p in self.people]
        return Outcome(home=[n for n in order if n in self.home], arrived=arrived, left=left,
                       seen=seen, no_data=no_data)


@dataclass
class Decision:
    """What to do with camera_status: `armed` None means leave it alone."""
    armed: bool | None
    clear_manual: bool
    message: str | None
    reason: str


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def decide(outcome: Outcome, *, auto: bool, armed: bool, manual, people_configured: bool = True,
           window: str | None = None, scheduled: bool = False) -> Decision:
    """Armed exactly when nobody is home or a schedule window (`window`, the one open now) is open,
    while auto mode is on and no manual command holds (it holds until someone arrives or leaves, or
    a window opens or closes).

    Arming needs data for everyone; disarming needs it too, unless an arrival was seen this poll
    (seeing someone is evidence enough). `scheduled`: arm windows are set at all.
    """
    clear = manual is not None and not manual_holds(manual, outcome.home, window)
    if not people_configured and not scheduled:
        return Decision(None, clear, None, "no people configured")
    if not auto:
        return Decision(None, clear, None, "auto_detect_status is off")
    if manual is not None and not clear:
        return Decision(None, False, None, "a manual command holds until someone arrives or leaves, "
                                           "or a schedule window opens or closes")
    away = people_configured and not outcome.home
    want = away or window is not None
    if want == armed:
        return Decision(None, clear, None, "already " + ("armed" if armed else "disarmed"))
    if window is not None:           # armed by the window, whatever presence knows
        return Decision(True, clear, f"Armed: the schedule ({window})", f"schedule {window}")
    if not want and not people_configured:
        return Decision(False, clear, "Disarmed: the schedule window closed", "schedule window closed")
    if want:
        if not outcome.complete:
            return Decision(None, clear, None, "no data for " + _names(outcome.no_data))
        return Decision(True, clear, "Armed: nobody home", "nobody home")
    if outcome.arrived:
        text = f"Disarmed: {_names(outcome.arrived)} arrived"
    elif outcome.complete or any(name in outcome.seen for name in outcome.home):
        # Seeing someone at home is evidence enough (after a window closed, say), as an arrival is.
        text = f"Disarmed: {_names(outcome.home)} {'is' if len(outcome.home) == 1 else 'are'} home"
    else:
        return Decision(None, clear, None, "no data for " + _names(outcome.no_data))
    return Decision(False, clear, text, text.removeprefix("Disarmed: "))
