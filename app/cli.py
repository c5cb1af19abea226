"""The `pycam` command: what an owner types.

    pycam doctor                 one line per part: ok, or what to do
    pycam setup                  asks for the Slack tokens, channel and camera; writes .env and pycam.yaml
    pycam start|stop|status      every process (scripts/pycam: nohup; systemd users use systemctl)
    pycam logs [NAME]            the last lines of a process's log (default: all of them)
    pycam replay SRC [...]       replay a recording with the live code (app/security_system.py --replay)
    pycam web-password           set the web page's password (stored hashed; the page then listens on the LAN)
    pycam camera-user NAME       on the hub: a Redis user for the camera Pi NAME; prints its REDIS_URL
    pycam camera-forget NAME     a camera renamed or taken away: out of /pycam_status, its user removed

Installed into the virtualenv by `make venv` (pyproject.toml: `.venv/bin/pycam`).
"""
from __future__ import annotations

import argparse
import getpass
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _line(ok: bool | None, part: str, text: str) -> str:
    mark = {True: "ok  ", False: "FAIL", None: "off "}[ok]
    return f"{mark} {part:<12} {text}"


def check_settings():
    import config
    try:
        return config.load_settings(), _line(True, "settings", "loaded")
    except config.ConfigError as e:
        return None, _line(False, "settings", str(e))


def check_data_dir(settings) -> str:
    from app import utils
    try:
        utils.check_data_dir(settings.data_dir)
    except SystemExit as e:
        return _line(False, "data dir", str(e).removeprefix("pycam: "))
    free = shutil.disk_usage(settings.data_dir).free / 1e9
    return _line(free > 0.5, "data dir", f"{settings.data_dir}, {free:.1f} GB free"
                 + ("" if free > 0.5 else ": free some space, events need room"))


def check_redis(settings):
    from app import state
    from app.utils import redact
    r = state.connect(settings.redis_url, "doctor", socket_timeout=2, connect_timeout=2, retries=0)
    try:
        r.ping()
        return r, _line(True, "redis", redact(settings.redis_url))
    except state.REFUSED as e:
        return None, _line(False, "redis", f"{redact(settings.redis_url)} refused this user ({e}): fix the "
                                          "user and password in REDIS_URL (`pycam camera-user NAME` on the hub)")
    except state.REDIS_DOWN as e:
        return None, _line(False, "redis", f"nothing answers at {redact(settings.redis_url)} ({type(e).__name__}): "
                                          "start it (sudo systemctl start redis-server) or fix REDIS_URL")


def check_camera(settings, r) -> str:
    from app import health, keys, state
    from app.camera.sources import open_source
    from app.utils import redact
    beat = state.get_json(r, keys.heartbeat("security_system")) if r is not None else None
    if isinstance(beat, dict) and not health.is_stale(beat, settings.heartbeat_ttl_s, time.time()) \
            and beat.get("state") == "running":
        return _line(True, "camera", "the camera daemon is reading it")
    try:
        source = open_source(settings.camera, realtime=False, loop=False)
        try:
            frame = source.read()
        finally:
            source.close()
        h, w = frame.detect.shape[:2]
        return _line(True, "camera", f"{redact(settings.camera.source)}: a {w}x{h} frame")
    except Exception as e:   # SourceError, or any driver error: the owner's to see, in one line
        return _line(False, "camera", f"{redact(str(e))[:200]}: set camera.source (PYCAM_SOURCE)")


def check_slack(settings) -> list[str]:
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError
    if not settings.slack.bot_token:
        return [_line(False, "slack", "SLACK_BOT_TOKEN is not set: run `pycam setup`")]
    client = WebClient(token=settings.slack.bot_token.get_secret_value(), base_url=settings.slack.api_url,
                       timeout=10)
    lines = []
    try:
        who = client.auth_test()
        lines.append(_line(True, "slack", f"bot {who.get('user')} in {who.get('team')}"))
    except SlackApiError as e:
        return [_line(False, "slack", f"Slack refused the bot token ({e.response.get('error')}): copy it again "
                                      "from OAuth & Permissions")]
    except Exception as e:
        return [_line(False, "slack", f"cannot reach Slack ({type(e).__name__})")]
    if not settings.slack.channel_id:
        lines.append(_line(False, "channel", "SLACK_CHANNEL_ID is not set"))
    else:
        try:
            info = client.conversations_info(channel=settings.slack.channel_id)
            member = (info.get("channel") or {}).get("is_member")
            lines.append(_line(bool(member), "channel", settings.slack.channel_id + (
                "" if member else ": invite the bot (/invite @pycam in the channel)")))
        except SlackApiError as e:
            lines.append(_line(False, "channel", f"{settings.slack.channel_id}: {e.response.get('error')}"))
    if settings.slack.app_token:
        try:
            WebClient(base_url=settings.slack.api_url, timeout=10).apps_connections_open(
                app_token=settings.slack.app_token.get_secret_value())
            lines.append(_line(True, "socket mode", "Slack hands out a connection for the app token"))
        except SlackApiError as e:
            lines.append(_line(False, "socket mode", f"Slack refused SLACK_APP_TOKEN ({e.response.get('error')}): "
                                                     "an app-level token with connections:write"))
    else:
        lines.append(_line(None, "socket mode", "SLACK_APP_TOKEN not set: HTTP mode must be reachable"))
    return lines


def check_s3(settings) -> str:
    if not settings.s3.bucket:
        return _line(None, "s3", "S3_BUCKET not set: uploads are off")
    from app.storage.s3 import S3Error, S3Store, make_client
    try:
        S3Store(make_client(settings.s3.endpoint_url, settings.s3.region), settings.s3.bucket,
                settings.s3.endpoint_url).check()
        return _line(True, "s3", f"bucket {settings.s3.bucket}")
    except S3Error as e:
        return _line(False, "s3", str(e))


def check_presence(settings) -> list[str]:
    if not settings.presence.providers:
        return [_line(None, "presence", "no providers: auto mode cannot arm")]
    import config
    from app.presence.providers import ProviderError, SetupError, build_providers
    try:
        providers = build_providers(settings.presence, config.environment())
    except SetupError as e:
        return [_line(False, "presence", str(e))]
    lines = []
    for p in providers:
        try:
            seen = p.poll()
            lines.append(_line(True, "presence", f"{p.name}: {len(seen)} devices seen"))
        except ProviderError as e:
            lines.append(_line(False, "presence", f"{p.name}: {e}"))
        finally:
            p.close()
    return lines


def doctor() -> int:
    """Check each part; one line each. Exit 0 when nothing failed."""
    settings, line = check_settings()
    lines = [line]
    if settings is not None:
        lines.append(check_data_dir(settings))
        r, line = check_redis(settings)
        lines.append(line)
        lines.append(check_camera(settings, r))
        lines += check_slack(settings)
        lines.append(check_s3(settings))
        lines += check_presence(settings)
    print("\n".join(lines))
    return 1 if any(line.startswith("FAIL") for line in lines) else 0


def setup(stdin=sys.stdin) -> int:
    """Ask for the Slack tokens, channel and camera; write .env (private) and pycam.yaml; check."""
    import yaml
    import config
    ask = (lambda prompt: getpass.getpass(prompt)) if stdin.isatty() else (lambda prompt: stdin.readline().strip())
    env_file = ROOT / ".env"
    values = config.read_dotenv(env_file)
    for name, prompt in (("SLACK_BOT_TOKEN", "Bot token (xoxb-...): "),
                         ("SLACK_APP_TOKEN", "App-level token for Socket Mode (xapp-...; empty for HTTP mode): "),
                         ("SLACK_CHANNEL_ID", "Channel ID (C...): ")):
        answer = ask(prompt)
        if answer:
            values[name] = answer
    lines = [f"{k}={v}" for k, v in values.items()]
    env_file.write_text("\n".join(lines) + "\n")
    os.chmod(env_file, 0o600)
    source = (stdin.readline().strip() if not stdin.isatty() else input("Camera (auto, picamera2, 0, rtsp://...) [auto]: "))
    yaml_file = ROOT / "pycam.yaml"
    tree = yaml.safe_load(yaml_file.read_text()) if yaml_file.is_file() else {}
    tree = tree if isinstance(tree, dict) else {}
    tree.setdefault("camera", {})["source"] = source or "auto"
    yaml_file.write_text(yaml.safe_dump(tree, sort_keys=False))
    print(f"wrote {env_file} (private) and {yaml_file}; checking:")
    return doctor()


MIN_PASSWORD = 10


def web_password(stdin=sys.stdin) -> int:
    """Ask for the web page's password twice and store its scrypt hash in the data dir."""
    import config
    from app.web import auth
    settings = config.load_or_exit()
    ask = (lambda prompt: getpass.getpass(prompt)) if stdin.isatty() else (lambda prompt: stdin.readline().rstrip("\n"))
    password = ask("New web page password: ")
    if len(password) < MIN_PASSWORD:
        print(f"pycam: at least {MIN_PASSWORD} characters, please; nothing changed", file=sys.stderr)
        return 1
    if ask("Once more: ") != password:
        print("pycam: the two differ; nothing changed", file=sys.stderr)
        return 1
    auth.set_password(settings.data_dir, password)
    print(f"Password set ({auth.web_dir(settings.data_dir) / 'password'}, hashed)."
          + ("" if settings.web.enabled else " Turn the page on with PYCAM_WEB=1 in .env (web.enabled),")
          + f" then `pycam restart`: it listens on the LAN at port {settings.web.port}.")
    return 0


def camera_user(name: str, hub: str | None) -> int:
    """Create the Redis ACL user a camera Pi connects with (app/access.py); print its REDIS_URL."""
    import socket
    from urllib.parse import urlsplit

    import config
    from app import access, state
    from app.utils import redact
    settings = config.load_or_exit()
    try:
        user = access.user_name(name)
    except ValueError as e:
        print(f"pycam: {e}", file=sys.stderr)
        return 2
    r = state.connect(settings.redis_url, "camera-user", retries=0)
    try:
        password = access.create(r, name)
        unsaved = access.persist(r)
    except state.REFUSED as e:
        print(f"pycam: Redis refused this user ({e}): run it with the hub's admin REDIS_URL", file=sys.stderr)
        return 1
    except state.REDIS_DOWN as e:
        print(f"pycam: no Redis at {redact(settings.redis_url)} ({type(e).__name__})", file=sys.stderr)
        return 1
    url = urlsplit(settings.redis_url)
    if url.scheme not in ("redis", "rediss"):
        print("pycam: the hub's REDIS_URL is a local socket: give the address camera Pis reach it at",
              file=sys.stderr)
        return 2
    host = hub or (url.hostname if url.hostname not in (None, "localhost", "127.0.0.1") else socket.gethostname())
    db = url.path.strip("/") or "0"
    print(f"REDIS_URL={url.scheme}://{user}:{password}@{host}:{url.port or 6379}/{db}")
    print(f"PYCAM_CAMERA_NAME={name}")
    print("Put those two lines in the camera Pi's .env (the password is shown once). The hub's Redis must listen "
          "on the LAN (bind) for it: docs/running.md, \"Several cameras\".", file=sys.stderr)
    if unsaved:
        print(f"pycam: the user lives until Redis restarts ({unsaved}); set `aclfile` in its config",
              file=sys.stderr)
    return 0


def camera_forget(name: str) -> int:
    """Forget a camera: out of the list (and the watchdog's), its keys, alarms and Redis user gone."""
    import config
    from app import access, cameras, state
    settings = config.load_or_exit()
    r = state.connect(settings.redis_url, "camera-forget", retries=0)
    try:
        known = cameras.forget(r, name)
        try:
            r.acl_deluser(access.user_name(name))
            access.persist(r)
        except (ValueError, *state.REFUSED):
            pass                 # no such user, or not an admin here: the camera is forgotten all the same
    except state.REDIS_DOWN as e:
        print(f"pycam: no Redis ({type(e).__name__})", file=sys.stderr)
        return 1
    print(f"Camera {name} forgotten." if known else f"pycam: no camera called {name!r} was known; nothing to do")
    return 0 if known else 1


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="pycam", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check every part, one line each")
    sub.add_parser("setup", help="ask for the Slack tokens, channel and camera, then check")
    for name in ("start", "stop", "status", "restart"):
        sub.add_parser(name, help=f"{name} every process (scripts/pycam)")
    logs = sub.add_parser("logs", help="the last lines of the logs")
    logs.add_argument("name", nargs="?")
    logs.add_argument("-n", type=int, default=40)
    sub.add_parser("web-password", help="set the web page's password")
    user = sub.add_parser("camera-user", help="on the hub: a Redis user for a camera Pi")
    user.add_argument("name")
    user.add_argument("--hub", help="the hub's address as the camera Pi reaches it (default: this host)")
    forget = sub.add_parser("camera-forget", help="forget a camera renamed or taken away")
    forget.add_argument("name")
    replay = sub.add_parser("replay", help="replay a recording with the live code")
    replay.add_argument("rest", nargs=argparse.REMAINDER)
    args = ap.parse_args(argv)
    if args.command == "doctor":
        return doctor()
    if args.command == "setup":
        return setup()
    if args.command == "web-password":
        return web_password()
    if args.command == "camera-user":
        return camera_user(args.name, args.hub)
    if args.command == "camera-forget":
        return camera_forget(args.name)
    if args.command in ("start", "stop", "status", "restart"):
        return subprocess.call([str(ROOT / "scripts" / "pycam"), args.command], cwd=ROOT)
    if args.command == "logs":
        import config
        logs_dir = config.load_or_exit().logs_dir
        files = [logs_dir / f"{args.name}.log"] if args.name else sorted(logs_dir.glob("*.log"))
        for f in files:
            if f.is_file():
                print(f"==> {f} <==")
                print("\n".join(f.read_text(errors="replace").splitlines()[-args.n:]))
        return 0
    return subprocess.call([sys.executable, str(ROOT / "app" / "security_system.py"), "--replay", *args.rest],
                           cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main())
