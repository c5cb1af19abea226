"""Slack in without a port: commands and clicks over a Socket Mode connection the Pi opens.

    python3 app/slack_socket.py

A thin shell: the code is in app.slack.socket. Keep this path: glances, systemd and the docs start it by it.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts app/ first on sys.path, where pycam's module names (utils,
    # keys...) would shadow libraries'; the package is imported from the project root instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from app.slack.socket import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
