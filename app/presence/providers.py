"""Presence providers: each reports the devices it sees now, or raises ProviderError.

- `router`: a router's web API (optional login, cookie or token, a JSON list of devices).
- `lan`: the kernel's neighbour table, after a UDP probe of known addresses.
- `command`: a user's program printing one MAC or hostname per line.

Error messages never hold credentials or full URLs (a token may sit in a URL): only the host.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping
from urllib.parse import urlsplit

from app.presence.rules import HOSTNAME, MAC, Device, normalize_hostname, normalize_mac, parse_device

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)


# pycam's own credentials: a presence script has no business with them (its own, named by the
# owner, it still gets).
PYCAM_SECRETS = {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"}


class ProviderError(Exception):
    """A provider could not answer; the message is safe to show (no secret, no full URL)."""


class SetupError(Exception):
    """A provider cannot start (e.g. its password variable is not set); stops the process."""


class Provider:
    """Base class: `poll()` returns the devices seen now."""
    name = "provider"
    kinds: frozenset[str] = frozenset({MAC, HOSTNAME})
    max_duration_s = 10.0  # longest a poll can take, timeouts included

    def poll(self) -> set[Device]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def get_path(doc: Any, path: str | None) -> Any:
    """Follow a dotted path ('data.devices', 'result.0.hosts') into JSON; '' is the document itself."""
    if not path:
        return doc
    for part in path.split("."):
        if isinstance(doc, dict) and part in doc:
            doc = doc[part]
        elif isinstance(doc, list) and part.lstrip("-").isdigit() and -len(doc) <= int(part) < len(doc):
            doc = doc[int(part)]
        else:
            raise KeyError(path)
    return doc


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on", "online", "connected", "active")
    return bool(value)


def _fill_token(body: Any, token: str | None) -> Any:
    """Put the session token into every '{token}' of a JSON body (JSON-RPC routers want it there)."""
    if isinstance(body, str):
        return body.replace("{token}", token or "")
    if isinstance(body, list):
        return [_fill_token(v, token) for v in body]
    if isinstance(body, dict):
        return {k: _fill_token(v, token) for k, v in body.items()}
    return body


class RouterProvider(Provider):
    """A router's web API: optional login, then a devices request read with configured paths."""

    def __init__(self, cfg, env: Mapping[str, str], session: requests.Session | None = None):
        self.cfg = cfg
        self.name = cfg.name
        self.kinds = frozenset(k for k, f in ((MAC, cfg.mac_field), (HOSTNAME, cfg.hostname_field)) if f)
        self.max_duration_s = 4 * cfg.timeout_s + 1  # login, devices, login again, devices again
        self.host = urlsplit(cfg.devices_url).hostname
        self._username = self._password = None
        if cfg.login is not None:
            self._password = env.get(cfg.login.password_env) or None
            if self._password is None:
                raise SetupError(f"provider {cfg.name}: environment variable {cfg.login.password_env} is not set")
            self._username = cfg.login.username
            if cfg.login.username_env:
                self._username = env.get(cfg.login.username_env) or None
                if self._username is None:
                    raise SetupError(f"provider {cfg.name}: environment variable {cfg.login.username_env} is not set")
        import requests        # only with a router to ask: 5 MB that a LAN or command provider never needs
        self.requests = requests
        self.session = session or requests.Session()
        self.session.verify = cfg.verify_tls
        self._token: str | None = None
        self._logged_in = False

    def close(self) -> None:
        self.session.close()

    def _request(self, what: str, method: str, url: str, **kw) -> requests.Response:
        requests = self.requests
        try:
            return self.session.request(method, url, timeout=self.cfg.timeout_s, **kw)
        except requests.exceptions.SSLError:
            raise ProviderError(f"{what}: TLS certificate of {self.host} not accepted (verify_tls)") from None
        except requests.exceptions.ConnectTimeout:
            raise ProviderError(f"{what}: {self.host} did not answer within {self.cfg.timeout_s:g} s") from None
        except requests.exceptions.Timeout:
            raise ProviderError(f"{what}: no answer within {self.cfg.timeout_s:g} s") from None
        except requests.exceptions.ConnectionError:
            raise ProviderError(f"{what}: cannot connect to {self.host}") from None
        except requests.exceptions.RequestException as e:
            raise ProviderError(f"{what}: {type(e).__name__}") from None

    def login(self) -> None:
        """Log in (form or JSON), keeping the session cookie and, when configured, a token header."""
        lc = self.cfg.login
        self._logged_in = False
        self._token = None
        self.session.headers.pop(lc.token_header, None)
        self.session.cookies.clear()
        fields = dict(lc.fields)
        if self._username is not None:
            fields[lc.username_field] = self._username
        fields[lc.password_field] = self._password
        kw: dict[str, Any] = {}
        if lc.method == "GET":
            kw["params"] = fields
        else:
            kw["json" if lc.body == "json" else "data"] = fields
        resp = self._request("login", lc.method, lc.url, **kw)
        if resp.status_code >= 400:
            hint = " (check " + lc.password_env + ")" if resp.status_code in (401, 403) else ""
            raise ProviderError(f"login refused: HTTP {resp.status_code}{hint}")
        if lc.token_path:
            try:
                token = get_path(resp.json(), lc.token_path)
            except (ValueError, KeyError):
                raise ProviderError(f"login answer has no token at {lc.token_path} "
                                    f"(wrong {lc.password_env}?)") from None
            if not isinstance(token, (str, int)) or token == "":
                raise ProviderError(f"login answer has no token at {lc.token_path}")
            self._token = str(token)
            self.session.headers[lc.token_header] = lc.token_prefix + self._token
        self._logged_in = True

    def _devices(self) -> tuple[str | None, list | None]:
        """(None, the device list), or (why it failed, None) when the session may have expired."""
        url = self.cfg.devices_url.replace("{token}", self._token or "")
        kw: dict[str, Any] = {"allow_redirects": False}  # a redirect is usually to the login page
        if self.cfg.devices_method == "POST" and self.cfg.devices_json is not None:
            kw["json"] = _fill_token(self.cfg.devices_json, self._token)
        resp = self._request("devices request", self.cfg.devices_method, url, **kw)
        if resp.status_code in (401, 403) or 300 <= resp.status_code < 400:
            return f"HTTP {resp.status_code}", None
        if resp.status_code >= 400:
            raise ProviderError(f"devices request: HTTP {resp.status_code}")
        try:
            items = get_path(resp.json(), self.cfg.list_path)
        except ValueError:
            return "the answer is not JSON", None
        except KeyError:
            return f"no {self.cfg.list_path or 'list'} in the answer", None
        if not isinstance(items, list):
            raise ProviderError(f"devices request: {self.cfg.list_path or 'the answer'} is not a list")
        return None, items

    def poll(self) -> set[Device]:
        if self.cfg.login is not None and not self._logged_in:
            self.login()
        why, items = self._devices()
        if why and self.cfg.login is not None:
            # Sessions expire (a 401/403, a redirect to the login page, an HTML page): log in again once.
            log.info("router %s: %s; logging in again", self.name, why)
            self.login()
            why, items = self._devices()
            if why:
                raise ProviderError(f"devices request: {why} after logging in again")
        elif why:
            raise ProviderError(f"devices request: {why}")
        return self._read(items)

    def _read(self, items: list) -> set[Device]:
        cfg = self.cfg
        seen: set[Device] = set()
        for item in items:
            if cfg.online_field:
                try:
                    if not _truthy(get_path(item, cfg.online_field)):
                        continue
                except KeyError:
                    continue
            for kind, path, norm in ((MAC, cfg.mac_field, normalize_mac), (HOSTNAME, cfg.hostname_field, normalize_hostname)):
                if not path:
                    continue
                try:
                    value = get_path(item, path)
                except KeyError:
                    continue
                value = norm(value) if isinstance(value, str) else None
                if value:
                    seen.add(Device(kind, value))
        return seen


# Neighbour states that mean the device answered recently (or is being re-checked right now).
PRESENT_STATES = {"REACHABLE", "STALE", "DELAY", "PROBE"}


class LanProvider(Provider):
    """The kernel neighbour table, after a UDP packet to each known address wakes ARP for it."""
    kinds = frozenset({MAC})

    def __init__(self, cfg, watch: set[str], arp_path: Path = Path("/proc/net/arp"),
                 sleep: Callable[[float], None] = time.sleep):
        self.cfg = cfg
        self.name = cfg.name
        self.watch = set(watch)  # MACs of configured people: only their addresses are learned and probed
        self.arp_path = arp_path
        self.sleep = sleep
        self.max_duration_s = cfg.probe_wait_s + 6
        self.learned: dict[str, list[str]] = {}  # MAC -> its last IPv4 addresses, newest last
        source = cfg.source
        if source == "auto":
            source = "ip" if shutil.which("ip") else "proc"
        self.source = source

    def targets(self) -> list[str]:
        """Configured addresses plus those where a known device was seen before."""
        out = [str(a) for a in self.cfg.addresses]
        for ips in self.learned.values():
            out.extend(ip for ip in ips if ip not in out)
        return out

    def probe(self, addresses: list[str]) -> int:
        """Send one empty UDP datagram to the discard port of each address; the kernel must ARP first."""
        sent = 0
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.setblocking(False)
            for ip in addresses:
                try:
                    s.sendto(b"", (ip, 9))
                    sent += 1
                except OSError:
                    pass  # unreachable right now: the neighbour table will say FAILED
        return sent

    def read_table(self) -> list[tuple[str, str | None, str]]:
        """(ip, mac or None, state) for each neighbour entry."""
        if self.source == "ip":
            try:
                out = subprocess.run(["ip", "-j", "neigh", "show"], capture_output=True, text=True,
                                     timeout=5, check=True).stdout
                entries = json.loads(out or "[]")
            except FileNotFoundError:
                raise ProviderError("the ip command is not installed (set source: proc)") from None
            except subprocess.TimeoutExpired:
                raise ProviderError("ip neigh did not answer within 5 s") from None
            except subprocess.CalledProcessError as e:
                raise ProviderError(f"ip neigh failed with exit status {e.returncode}") from None
            except ValueError:
                raise ProviderError("ip neigh printed something that is not JSON") from None
            rows = []
            for e in entries:
                if not isinstance(e, dict) or (self.cfg.interface and e.get("dev") != self.cfg.interface):
                    continue
                states = e.get("state") or []
                rows.append((str(e.get("dst", "")), e.get("lladdr"),
                             "PRESENT" if PRESENT_STATES & set(states) else ",".join(states) or "NONE"))
            return rows
        try:
            lines = self.arp_path.read_text().splitlines()[1:]
        except OSError as e:
            raise ProviderError(f"cannot read {self.arp_path}: {e.strerror}") from None
        rows = []
        for line in lines:
            parts = line.split()
            if len(parts) < 6 or (self.cfg.interface and parts[5] != self.cfg.interface):
                continue
            complete = int(parts[2], 16) & 0x2  # ATF_COM: the address is resolved
            rows.append((parts[0], parts[3], "PRESENT" if complete else "INCOMPLETE"))
        return rows

    def poll(self) -> set[Device]:
        if self.cfg.probe:
            targets = self.targets()
            if targets and self.probe(targets) and self.cfg.probe_wait_s:
                self.sleep(self.cfg.probe_wait_s)
        seen: set[Device] = set()
        for ip, lladdr, state in self.read_table():
            mac = normalize_mac(lladdr) if isinstance(lladdr, str) else None
            if mac is None or mac == "00:00:00:00:00:00" or state != "PRESENT":
                continue
            seen.add(Device(MAC, mac))
            if mac in self.watch and "." in ip:
                ips = [a for a in self.learned.get(mac, []) if a != ip] + [ip]
                self.learned[mac] = ips[-3:]  # a phone changes address now and then
        return seen


class CommandProvider(Provider):
    """A user's program (argument list, no shell) printing one MAC or hostname per line."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.name = cfg.name
        self.max_duration_s = cfg.timeout_s + 2
        self._proc: subprocess.Popen | None = None
        self._lock = threading.Lock()

    def poll(self) -> set[Device]:
        argv = list(self.cfg.argv)
        try:
            # stderr is dropped: it is the script's own text and might echo a secret into our logs.
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, errors="replace",
                                    env={k: v for k, v in os.environ.items() if k not in PYCAM_SECRETS})
        except FileNotFoundError:
            raise ProviderError(f"cannot run {os.path.basename(argv[0])}: not found") from None
        except PermissionError:
            raise ProviderError(f"cannot run {os.path.basename(argv[0])}: not executable") from None
        except OSError as e:
            raise ProviderError(f"cannot run {os.path.basename(argv[0])}: {e.strerror}") from None
        with self._lock:
            self._proc = proc
        try:
            out, _ = proc.communicate(timeout=self.cfg.timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise ProviderError(f"no answer within {self.cfg.timeout_s:g} s") from None
        finally:
            with self._lock:
                self._proc = None
        if proc.returncode != 0:
            raise ProviderError(f"exit status {proc.returncode}")
        seen = set()
        for line in out.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                device = parse_device(line)
                if device:
                    seen.add(device)
        return seen

    def close(self) -> None:
        with self._lock:
            if self._proc is not None and self._proc.poll() is None:
                self._proc.kill()


def build_providers(cfg, env: Mapping[str, str]) -> list[Provider]:
    """One provider per configured entry; SetupError when one cannot start (missing variable)."""
    watch = {d for person in cfg.people for d in person.devices if normalize_mac(d) == d}
    providers: list[Provider] = []
    for pc in cfg.providers:
        if pc.type == "router":
            providers.append(RouterProvider(pc, env))
        elif pc.type == "lan":
            providers.append(LanProvider(pc, watch))
        else:
            providers.append(CommandProvider(pc))
    return providers
