"""Presence providers against real parts: a router web API on loopback, real scripts, and the
kernel's neighbour table inside network namespaces made for the test."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.presence.rules import HOSTNAME, MAC, Device
from app.presence.providers import (CommandProvider, ProviderError, RouterProvider, SetupError,
                                    build_providers)
from config import CommandProviderConfig, PresenceConfig, RouterProviderConfig
from tests.presence_fakes import PASSWORD, FakeRouter

ROOT = Path(__file__).resolve().parent.parent
ENV = {"ROUTER_PASSWORD": PASSWORD}
PHONE, LAPTOP = "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"


@pytest.fixture
def router():
    fake = FakeRouter().start()
    yield fake
    fake.stop()


def router_cfg(fake: FakeRouter, **over) -> RouterProviderConfig:
    cfg = {"type": "router", "devices_url": fake.url + "/api/devices", "list_path": "data.devices",
           "online_field": "online", "timeout_s": 2,
           "login": {"url": fake.url + "/login", "username": "admin", "password_env": "ROUTER_PASSWORD"}}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return RouterProviderConfig.model_validate(cfg)


def test_router_logs_in_once_and_reads_the_devices(router):
    router.set_devices(PHONE, LAPTOP, hostnames={LAPTOP: "Bobs-Laptop"}, offline=("aa:bb:cc:dd:ee:99",))
    p = RouterProvider(router_cfg(router), ENV)
    seen = p.poll()
    assert seen == {Device(MAC, PHONE), Device(MAC, LAPTOP), Device(HOSTNAME, "bobs-laptop")}
    router.set_devices(LAPTOP)
    assert p.poll() == {Device(MAC, LAPTOP)}
    assert router.logins == 1  # the session cookie was carried
    assert router.login_bodies[0] == {"username": "admin", "password": PASSWORD}


def test_router_json_login_with_a_token_header(router):
    router.set_cookie = False
    router.set_devices(PHONE)
    p = RouterProvider(router_cfg(router, login={"body": "json", "token_path": "data.token"}), ENV)
    assert p.poll() == {Device(MAC, PHONE)}
    assert router.logins == 1


@pytest.mark.parametrize("answer", ["401", "redirect", "html"])
def test_an_expired_session_logs_in_again_once(router, answer):
    router.expired_answer = answer
    router.set_devices(PHONE)
    p = RouterProvider(router_cfg(router), ENV)
    p.poll()
    router.expire_sessions()
    assert p.poll() == {Device(MAC, PHONE)}
    assert router.logins == 2


def test_a_wrong_password_is_an_error_that_never_shows_the_password(router, caplog):
    caplog.set_level(logging.DEBUG)
    p = RouterProvider(router_cfg(router), {"ROUTER_PASSWORD": "wrong-secret-123"})
    with pytest.raises(ProviderError) as e:
        p.poll()
    assert str(e.value) == "login refused: HTTP 401 (check ROUTER_PASSWORD)"
    assert "wrong-secret-123" not in caplog.text


def test_a_session_refused_even_after_logging_in_again_is_an_error(router):
    router.set_devices(PHONE)
    p = RouterProvider(router_cfg(router), ENV)
    p.poll()
    router.expire_sessions()
    router.keep_sessions = False
    with pytest.raises(ProviderError, match="HTTP 401 after logging in again"):
        p.poll()
    assert router.logins == 2  # once, not in a loop


def test_router_errors_timeouts_and_recovery(router):
    router.set_devices(PHONE)
    p = RouterProvider(router_cfg(router, timeout_s=0.3), ENV)
    router.fail_next = [500]
    with pytest.raises(ProviderError, match="^devices request: HTTP 500$"):
        p.poll()
    assert p.poll() == {Device(MAC, PHONE)}
    router.delay_s = 0.6
    with pytest.raises(ProviderError, match="no answer within 0.3 s"):
        p.poll()
    router.delay_s = 0
    assert p.poll() == {Device(MAC, PHONE)}


def test_router_down_and_no_login(router):
    router.set_devices(PHONE)
    p = RouterProvider(router_cfg(router, login=None, devices_url=router.url + "/open/devices"), {})
    assert p.poll() == {Device(MAC, PHONE)}
    router.stop()
    with pytest.raises(ProviderError, match="cannot connect to 127.0.0.1"):
        p.poll()


def test_a_missing_password_variable_stops_the_start(router):
    with pytest.raises(SetupError, match="ROUTER_PASSWORD is not set"):
        RouterProvider(router_cfg(router), {})


def command(tmp_path, body: str, **over) -> CommandProvider:
    script = tmp_path / "who.py"
    script.write_text(textwrap.dedent(body))
    return CommandProvider(CommandProviderConfig.model_validate(
        {"type": "command", "argv": [sys.executable, str(script)], **over}))


def test_command_lines_become_devices(tmp_path):
    p = command(tmp_path, """
        print("AA-BB-CC-DD-EE-01")
        print("# a comment")
        print("")
        print("Bobs-Laptop ")
    """)
    assert p.poll() == {Device(MAC, PHONE), Device(HOSTNAME, "bobs-laptop")}


def test_command_failures(tmp_path):
    with pytest.raises(ProviderError, match="^exit status 3$"):
        command(tmp_path, "import sys; print('secret=x', file=sys.stderr); sys.exit(3)").poll()
    with pytest.raises(ProviderError, match="no answer within 0.3 s"):
        command(tmp_path, "import time; time.sleep(5)", timeout_s=0.3).poll()
    missing = CommandProvider(CommandProviderConfig(type="command", argv=[str(tmp_path / "nope")]))
    with pytest.raises(ProviderError, match="not found"):
        missing.poll()


def test_build_providers_watches_only_configured_macs(router):
    cfg = PresenceConfig.model_validate({
        "people": [{"name": "A", "devices": [PHONE, "a-host"], "allow_hostnames": True}],
        "providers": [{"type": "lan"}, {"type": "command", "argv": ["true"]},
                      router_cfg(router).model_dump()]})
    lan, cmd, rtr = build_providers(cfg, ENV)
    assert lan.watch == {PHONE} and lan.kinds == {MAC}
    assert rtr.kinds == {MAC, HOSTNAME}


# -- lan: real neighbour entries in network namespaces ------------------------------------------------

def _netns_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns add)"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"pycamt{os.getpid()}x"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add is not allowed here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


PHONES = {1: "02:00:00:c8:01:02", 2: "02:00:00:c8:02:02"}  # phone n is 10.200.n.2, the Pi is 10.200.n.1


@pytest.fixture(scope="module")
def lan_net():
    """A 'pi' namespace linked by veth pairs to two 'phone' namespaces; only 10.200.1-2.x, all ours."""
    reason = _netns_reason()
    if reason:
        pytest.skip(reason)
    tag = f"pycamt{os.getpid()}"
    pi, phones = f"{tag}pi", {n: f"{tag}ph{n}" for n in PHONES}
    made = []

    def ip(*args):
        subprocess.run(["ip", *args], check=True, capture_output=True)
    try:
        for ns in (pi, *phones.values()):
            ip("netns", "add", ns)
            made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        for n, ns in phones.items():
            ip("-n", pi, "link", "add", f"pi{n}", "type", "veth", "peer", "name", f"ph{n}")
            ip("-n", pi, "link", "set", f"ph{n}", "netns", ns)
            ip("-n", ns, "link", "set", f"ph{n}", "address", PHONES[n])
            ip("-n", pi, "addr", "add", f"10.200.{n}.1/24", "dev", f"pi{n}")
            ip("-n", ns, "addr", "add", f"10.200.{n}.2/24", "dev", f"ph{n}")
            ip("-n", pi, "link", "set", f"pi{n}", "up")
            ip("-n", ns, "link", "set", f"ph{n}", "up")
        yield {"pi": pi, "phones": phones, "ip": ip}
    finally:
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class LanHelper:
    """A LanProvider running inside the 'pi' namespace, driven line by line."""

    def __init__(self, ns: str, provider: dict, watch):
        cfg = json.dumps({"provider": {"type": "lan", **provider}, "watch": sorted(watch)})
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable,
                                      str(ROOT / "tests" / "presence_fakes.py"), "lan", cfg],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def ask(self, line: str) -> dict:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(5)


@pytest.fixture
def lan(lan_net):
    helpers = []

    def make(**provider):
        lan_net["ip"]("-n", lan_net["pi"], "neigh", "flush", "all")
        h = LanHelper(lan_net["pi"], provider, PHONES.values())
        helpers.append(h)
        return h
    yield make
    for h in helpers:
        h.close()


def test_lan_probe_finds_a_phone_with_no_neighbour_entry(lan):
    h = lan(addresses=["10.200.1.2"], probe_wait_s=0.2)
    result = h.ask("poll")
    assert result["error"] is None
    assert result["seen"] == [PHONES[1]]  # the probe made the kernel ARP for it


def test_lan_learns_addresses_and_probes_them_after_the_entry_expired(lan, lan_net):
    h = lan(probe_wait_s=0.2)
    assert h.ask("poll")["seen"] == []
    h.ask("send 10.200.2.2")  # traffic to the phone, as when it was last awake
    result = h.ask("poll")
    assert result["seen"] == [PHONES[2]] and result["learned"] == {PHONES[2]: ["10.200.2.2"]}
    lan_net["ip"]("-n", lan_net["pi"], "neigh", "flush", "all")  # the entry aged out while it slept
    assert h.ask("poll")["seen"] == [PHONES[2]]


def test_lan_without_probe_misses_a_sleeping_phone_and_proc_source_agrees(lan, lan_net):
    h = lan(probe=False, source="proc")
    h.ask("send 10.200.1.2")
    assert h.ask("poll")["seen"] == [PHONES[1]]
    lan_net["ip"]("-n", lan_net["pi"], "neigh", "flush", "all")
    assert h.ask("poll")["seen"] == []


def test_lan_a_phone_that_left_is_absent(lan, lan_net):
    h = lan(addresses=["10.200.1.2", "10.200.2.2"], probe_wait_s=0.2)
    assert h.ask("poll")["seen"] == sorted(PHONES.values())
    phone2 = lan_net["phones"][2]
    lan_net["ip"]("-n", phone2, "addr", "del", "10.200.2.2/24", "dev", "ph2")  # it left the network
    try:
        lan_net["ip"]("-n", lan_net["pi"], "neigh", "flush", "all")
        assert h.ask("poll")["seen"] == [PHONES[1]]  # its probe is INCOMPLETE, then FAILED: absent
    finally:
        lan_net["ip"]("-n", phone2, "addr", "add", "10.200.2.2/24", "dev", "ph2")
