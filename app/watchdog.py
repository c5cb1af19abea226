"""The watchdog: tells the owner when a pycam process stops, when Redis was away, and when the Pi
is under-volted or throttled (app/watch/daemon.py).

    python3 app/watchdog.py

A thin shell, for the separate layout; the standard and compact ones run it in app/services.py.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts app/ first on sys.path, where pycam's module names (utils,
    # keys...) would shadow libraries'; the package is imported from the project root instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from app import startup  # noqa: E402
from app.watch.daemon import NAME, serve  # noqa: E402

if __name__ == "__main__":
    sys.exit(serve(*startup.start(NAME)))
