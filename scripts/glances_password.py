"""Set the glances web password without glances' interactive prompt (for nohup and systemd).

`glances -w --password` prompts on the terminal unless its password file exists, so this writes
that file the way glances itself would: `<dir>/glances.pwd` holding `salt$hash`, hashed with
glances' own functions (so any glances 4 accepts it), mode 0600. The password is read from the
terminal (twice), or from the first line of stdin when stdin is not a terminal.

    .venv/bin/python scripts/glances_password.py            # ~/.config/glances/glances.pwd
    .venv/bin/python scripts/glances_password.py --dir DIR  # another user's glances config dir
"""
from __future__ import annotations

import argparse
import getpass
import os
import sys
import tempfile
from pathlib import Path

MIN_LENGTH = 8


def default_dir() -> Path:
    """The folder glances reads its password file from (its user config dir on Linux)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "glances"


def hashed(password: str, username: str = "glances") -> str:
    """The password file's content for `password`, exactly as glances saves it."""
    from glances.password import GlancesPassword
    gp = GlancesPassword(username=username)
    return gp.hash_password(gp.get_hash(password))


def write_password_file(directory: Path, password: str, username: str = "glances") -> Path:
    """Atomically write <directory>/<username>.pwd with mode 0600; return its path."""
    if len(password) < MIN_LENGTH:
        raise ValueError(f"the password must have at least {MIN_LENGTH} characters")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"{username}.pwd"
    fd, tmp = tempfile.mkstemp(prefix=".glances.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:  # mkstemp files are already 0600
            f.write(hashed(password, username))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def read_password() -> str:
    """From the terminal (asked twice), or the first line of a piped stdin."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("New glances web password: ")
    if getpass.getpass("Again: ") != first:
        raise ValueError("the two passwords differ")
    return first


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None,
                        help="glances config dir (default: $XDG_CONFIG_HOME/glances or ~/.config/glances)")
    args = parser.parse_args(argv)
    try:
        path = write_password_file(args.dir or default_dir(), read_password())
    except ValueError as e:
        print(f"pycam: {e}; nothing written", file=sys.stderr)
        return 2
    print(f"glances password saved in {path} (user name: glances)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
