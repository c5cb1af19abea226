"""Presence settings: people, their devices, and the providers that see them (docs/presence.md)."""
from __future__ import annotations

import re
from ipaddress import IPv4Address
from typing import Any, Literal, Union

from config_sections.model import Field, field_validator

from config_sections.base import ENV_NAME, SECRET_KEY, Section, hide_secrets, plain_url
from config_sections.devices import normalize_hostname, normalize_mac

_PROVIDER_NAME = r"^[A-Za-z0-9_-]{1,40}$"

class PersonConfig(Section):
    name: str = Field(..., min_length=1, max_length=40, pattern=r"^[^\x00-\x1f\x7f]+$",
                      description="Shown in Slack messages and the `home` list.")
    # Declared before devices so the devices validator knows it.
    allow_hostnames: bool = Field(False, description=(
        "Also accept hostnames in devices (any guest can call a phone 'iPhone': MACs are safer)."))
    devices: list[str] = Field(..., min_length=1, max_length=20, description=(
        "MAC addresses (aa:bb:cc:dd:ee:ff, aa-bb-cc-dd-ee-ff or aabbccddeeff), or hostnames where "
        "allow_hostnames is on."))

    @field_validator("devices")
    @classmethod
    def _normal_devices(cls, v: list[str], info) -> list[str]:
        out = []
        for text in v:
            device = normalize_mac(text)
            if device is None:
                if not info.data.get("allow_hostnames"):
                    raise ValueError(f"{text!r} is not a MAC address; set allow_hostnames: true to match "
                                     "hostnames (they can be shared or spoofed)")
                device = normalize_hostname(text)
                if device is None:
                    raise ValueError(f"{text!r} is neither a MAC address nor a hostname (1-64 printable characters)")
            out.append(device)
        return out


class RouterLoginConfig(Section):
    url: str = Field(..., description="Login request URL.")
    method: Literal["POST", "GET"] = "POST"
    body: Literal["form", "json"] = Field("form", description="Send the login fields as a form or as JSON.")
    username: str | None = Field(None, max_length=200, description="User name (not secret); or username_env.")
    username_env: str | None = Field(None, pattern=ENV_NAME, description="Environment variable holding the user name.")
    username_field: str = Field("username", min_length=1, max_length=100)
    password_env: str = Field(..., pattern=ENV_NAME, description="Environment variable holding the password.")
    password_field: str = Field("password", min_length=1, max_length=100)
    fields: dict[str, str] = Field(default_factory=dict, description="Extra constant login fields (never secrets).")
    token_path: str | None = Field(None, min_length=1, max_length=200, description=(
        "Dotted path of a session token in the login answer's JSON (e.g. data.token); unset: cookies only."))
    token_header: str = Field("Authorization", pattern=r"^[A-Za-z0-9-]{1,100}$", description="Header carrying the token.")
    token_prefix: str = Field("Bearer ", max_length=40, description="Text before the token in that header.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        return plain_url(v)

    @field_validator("fields")
    @classmethod
    def _no_secret_fields(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if re.search(SECRET_KEY, key):
                raise ValueError(f"{key!r} looks like a secret: name its environment variable with password_env")
        return v


class RouterProviderConfig(Section):
    type: Literal["router"]
    name: str = Field("router", pattern=_PROVIDER_NAME, description="Shown in /pycam_status.")
    devices_url: str = Field(..., description="URL answering with the connected devices as JSON ({token} is replaced).")
    devices_method: Literal["GET", "POST"] = "GET"
    devices_json: Any = Field(None, description="JSON body of a POST devices request ({token} in strings is replaced).")
    list_path: str = Field("", max_length=200, description="Dotted path to the device list in the answer; empty: the answer itself.")
    mac_field: str | None = Field("mac", min_length=1, max_length=100, description="Dotted path of the MAC in each device.")
    hostname_field: str | None = Field("hostname", min_length=1, max_length=100, description="Dotted path of the hostname in each device.")
    online_field: str | None = Field(None, min_length=1, max_length=100, description=(
        "Dotted path of an online flag, for routers that also list offline devices; unset: every listed device counts."))
    login: RouterLoginConfig | None = None
    timeout_s: float = Field(5, gt=0, le=60, description="Timeout of each HTTP request.")
    verify_tls: bool = Field(True, description="Check the router's HTTPS certificate (off for self-signed ones).")

    @field_validator("devices_url")
    @classmethod
    def _url(cls, v: str) -> str:
        return plain_url(v)


class LanProviderConfig(Section):
    type: Literal["lan"]
    name: str = Field("lan", pattern=_PROVIDER_NAME)
    source: Literal["auto", "ip", "proc"] = Field("auto", description="`ip -j neigh`, /proc/net/arp, or auto (ip when installed).")
    interface: str | None = Field(None, pattern=r"^[A-Za-z0-9_.@-]{1,15}$", description="Only neighbours on this interface.")
    probe: bool = Field(True, description="Send one UDP packet to each known address first, so sleeping phones answer ARP.")
    addresses: list[IPv4Address] = Field(default_factory=list, max_length=256, description=(
        "IPv4 addresses probed every poll (e.g. the phones' DHCP reservations); addresses where a known "
        "device was seen before are probed too."))
    probe_wait_s: float = Field(1.0, ge=0, le=10, description="Wait after probing before reading the table.")


class CommandProviderConfig(Section):
    type: Literal["command"]
    name: str = Field("command", pattern=_PROVIDER_NAME)
    argv: list[str] = Field(..., min_length=1, description="Program and arguments (no shell); prints one MAC or hostname per line.")
    timeout_s: float = Field(10, gt=0, le=300)


# Chosen by the `type` each one fixes.
ProviderConfig = Union[RouterProviderConfig, LanProviderConfig, CommandProviderConfig]


class PresenceConfig(Section):
    poll_s: float = Field(30, ge=5, le=3600, description="Seconds between presence polls.")
    consider_home_s: float = Field(600, ge=0, le=86400, description="A person is away only after not being seen this long.")
    people: list[PersonConfig] = Field(default_factory=list, max_length=50)
    providers: list[ProviderConfig] = Field(default_factory=list, max_length=10, description="Presence providers; see docs/presence.md.")

    @field_validator("people")
    @classmethod
    def _unique_people(cls, v: list[PersonConfig]) -> list[PersonConfig]:
        owner: dict[str, str] = {}
        for person in v:
            if any(p is not person and p.name == person.name for p in v):
                raise ValueError(f"{person.name!r} is listed twice: each name must be unique")
            for device in person.devices:
                if owner.setdefault(device, person.name) != person.name:
                    raise ValueError(f"device {device!r} is listed for both {owner[device]} and {person.name}")
        return v

    @field_validator("providers", mode="before")
    @classmethod
    def _mask(cls, v: Any) -> Any:
        return hide_secrets(v)

    @field_validator("providers")
    @classmethod
    def _unique_providers(cls, v: list) -> list:
        names = [p.name for p in v]
        if len(set(names)) != len(names):
            raise ValueError("each provider needs its own name (set name: on one of them)")
        return v
