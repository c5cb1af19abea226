"""Presence decisions (pure logic, a clock we advance) and the presence settings."""
from __future__ import annotations

import pytest

import config
from app.presence.rules import (HOSTNAME, MAC, Device, Person, Sightings, Tracker, decide, mask_mac,
                          normalize_mac, parse_device)

ALICE_MAC, BOB_MAC = "aa:bb:cc:dd:ee:01", "aa:bb:cc:dd:ee:02"
PEOPLE = [Person("Alice", frozenset({Device(MAC, ALICE_MAC)})),
          Person("Bob", frozenset({Device(MAC, BOB_MAC), Device(HOSTNAME, "bobs-laptop")}))]


def seen(*macs, kinds=(MAC, HOSTNAME)):
    return Sightings({Device(MAC, m) for m in macs}, set(kinds))


def test_mac_forms_and_masking():
    assert normalize_mac("AA-BB-CC-DD-EE-FF") == "aa:bb:cc:dd:ee:ff"
    assert normalize_mac("aabbccddeeff") == normalize_mac("aabb.ccdd.eeff") == "aa:bb:cc:dd:ee:ff"
    assert normalize_mac("aa:bb-cc:dd:ee:ff") is None
    assert parse_device("Alices-iPhone.") == Device(HOSTNAME, "alices-iphone")
    assert mask_mac("aa:bb:cc:dd:ee:ff") == "…:ee:ff"
    assert str(Device(MAC, "aa:bb:cc:dd:ee:ff")) == "…:ee:ff"


def test_arrival_counts_at_once_and_leaving_only_after_consider_home():
    t = Tracker(PEOPLE, consider_home_s=600, now=0)
    out = t.update(seen(ALICE_MAC), now=0)
    assert out.home == ["Alice"] and out.arrived == ["Alice"]
    # The phone sleeps for nine minutes: still home.
    for now in range(30, 600, 30):
        assert t.update(seen(), now=now).home == ["Alice"]
    assert t.update(seen(ALICE_MAC), now=600).left == []
    out = t.update(seen(), now=1199)
    assert out.home == ["Alice"]
    out = t.update(seen(), now=1200)
    assert out.home == [] and out.left == ["Alice"]


def test_a_failed_poll_is_no_data_and_restarts_the_away_clock():
    t = Tracker(PEOPLE, consider_home_s=600, now=0)
    t.update(seen(ALICE_MAC), now=0)
    # Every provider failed at 590 s: unknown, so Alice is kept home...
    out = t.update(Sightings(set(), set()), now=590)
    assert out.home == ["Alice"] and out.no_data == ["Alice", "Bob"]
    # ...and a working poll just after does not call her gone on the strength of the blind spell.
    assert t.update(seen(), now=620).home == ["Alice"]
    assert t.update(seen(), now=1190).left == ["Alice"]


def test_only_providers_that_can_see_a_device_count():
    t = Tracker(PEOPLE, consider_home_s=0, now=0)
    t.update(seen(ALICE_MAC, BOB_MAC), now=0)
    # Only a MAC-only provider answered: Bob still has a MAC, so data is there for both.
    out = t.update(seen(kinds=(MAC,)), now=10)
    assert out.left == ["Alice", "Bob"] and out.no_data == []
    hostname_only = [Person("Carol", frozenset({Device(HOSTNAME, "carols-phone")}))]
    t = Tracker(hostname_only, consider_home_s=0, now=0, home=["Carol"])
    assert t.update(seen(kinds=(MAC,)), now=10).no_data == ["Carol"]


def test_restart_keeps_home_until_consider_home_of_observed_absence():
    t = Tracker(PEOPLE, consider_home_s=600, now=5000, home=["Alice", "Ghost"], last_seen={"Alice": 100})
    assert t.update(seen(), now=5030).home == ["Alice"]
    assert t.update(seen(), now=5600).left == ["Alice"]


def _outcome(home, arrived=(), no_data=()):
    from app.presence.rules import Outcome
    return Outcome(home=list(home), arrived=list(arrived), left=[], seen=[], no_data=list(no_data))


def test_decisions():
    d = decide(_outcome([]), auto=True, armed=False, manual=None)
    assert d.armed is True and d.message == "Armed: nobody home"
    d = decide(_outcome(["Alice", "Bob"], arrived=["Alice", "Bob"]), auto=True, armed=True, manual=None)
    assert d.armed is False and d.message == "Disarmed: Alice and Bob arrived"
    assert decide(_outcome([]), auto=False, armed=False, manual=None).armed is None
    assert decide(_outcome([]), auto=True, armed=True, manual=None).armed is None
    # Arming needs data for everyone; an arrival disarms even when another provider is down.
    assert decide(_outcome([], no_data=["Bob"]), auto=True, armed=False, manual=None).armed is None
    d = decide(_outcome(["Alice"], arrived=["Alice"], no_data=["Bob"]), auto=True, armed=True, manual=None)
    assert d.armed is False
    assert decide(_outcome(["Alice"], no_data=["Bob"]), auto=True, armed=True, manual=None).armed is None
    assert decide(_outcome([]), auto=True, armed=False, manual=None, people_configured=False).armed is None


def test_manual_command_holds_until_home_changes():
    manual = {"state": False, "home": [], "time": 1}
    d = decide(_outcome([]), auto=True, armed=False, manual=manual)
    assert d.armed is None and not d.clear_manual
    d = decide(_outcome(["Alice"], arrived=["Alice"]), auto=True, armed=False, manual=manual)
    assert d.clear_manual and d.armed is None  # already disarmed: nothing to send
    d = decide(_outcome(["Alice"], arrived=["Alice"]), auto=True, armed=True,
               manual={"state": True, "home": [], "time": 1})
    assert d.clear_manual and d.armed is False
    assert decide(_outcome([]), auto=True, armed=False, manual="garbage").clear_manual


def presence_settings(tmp_path, text: str, env=None):
    path = tmp_path / "pycam.yaml"
    path.write_text(text)
    return config.load_settings(env=env or {}, config_path=path).presence


def test_settings_people_and_providers(tmp_path):
    p = presence_settings(tmp_path, """
presence:
  consider_home_s: 300
  people:
    - {name: Alice, devices: ["AA-BB-CC-DD-EE-01"]}
    - {name: Bob, devices: [bobs-laptop, aabbccddee02], allow_hostnames: true}
  providers:
    - type: router
      devices_url: http://192.168.1.1/api/devices
      list_path: data.devices
      login: {url: http://192.168.1.1/login, body: json, username: admin, password_env: ROUTER_PASSWORD,
              token_path: data.token}
    - {type: lan, addresses: [192.168.1.20]}
    - {type: command, argv: [/usr/local/bin/who.sh]}
""")
    assert p.people[0].devices == ["aa:bb:cc:dd:ee:01"]
    assert p.people[1].devices == ["bobs-laptop", "aa:bb:cc:dd:ee:02"]
    assert [pc.type for pc in p.providers] == ["router", "lan", "command"]
    assert p.providers[0].login.password_env == "ROUTER_PASSWORD"


@pytest.mark.parametrize("text, expected", [
    ("people: [{name: A, devices: [alices-iphone]}]", "allow_hostnames"),
    ("people: [{name: A, devices: []}]", "devices"),
    ("people: [{name: A, devices: [aabbccddee01]}, {name: A, devices: [aabbccddee02]}]", "unique"),
    ("people: [{name: A, devices: [aabbccddee01]}, {name: B, devices: [AA:BB:CC:DD:EE:01]}]", "both A and B"),
    ("providers: [{type: wifi}]", "type"),
    ("providers: [{type: lan}, {type: lan}]", "own name"),
    ("providers: [{type: lan, addresses: [not-an-ip]}]", "addresses"),
    ("providers: [{type: command, argv: []}]", "argv"),
    ("providers: [{type: router, devices_url: 'http://admin:pw@192.168.1.1/x'}]", "must not hold"),
    ("providers: [{type: router, devices_url: 'ftp://192.168.1.1/x'}]", "http"),
    ("providers: [{type: router, devices_url: 'http://r/x', timeout_s: 0}]", "timeout_s"),
    ("providers: [{type: router, devices_url: 'http://r/x', login: {url: 'http://r/l', password_env: 'A B'}}]",
     "password_env"),
    ("poll_s: 1", "poll_s"),
])
def test_bad_presence_settings_are_refused(tmp_path, text, expected):
    body = "presence:\n" + "".join("  " + line + "\n" for line in text.splitlines())
    with pytest.raises(config.ConfigError) as e:
        presence_settings(tmp_path, body)
    assert expected in str(e.value)


@pytest.mark.parametrize("login", [
    "{url: 'http://r/l', password_env: P, password: hunter2-secret}",
    "{url: 'http://r/l', password_env: P, fields: {passwd: hunter2-secret}}",
    "{url: 'http://r/l', password: hunter2-secret}",
])
def test_a_password_in_the_yaml_is_refused_without_showing_it(tmp_path, login):
    with pytest.raises(config.ConfigError) as e:
        presence_settings(tmp_path, f"presence:\n  providers: [{{type: router, devices_url: 'http://r/x', login: {login}}}]\n")
    assert "hunter2" not in str(e.value)
    assert "environment" in str(e.value) or "password_env" in str(e.value)
