"""The notifier: the one process that calls Slack's Web API, delivering the outbox in order.

    python3 app/notifier.py

A thin shell: the code is in app.slack.notifier. Keep this path: glances, systemd and the docs start it by it.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts app/ first on sys.path, where pycam's module names (utils,
    # keys...) would shadow libraries'; the package is imported from the project root instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from app.slack.notifier import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
