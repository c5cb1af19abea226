"""The network services in one process: Slack out and in, presence, S3 and the watchdog
(app/together.py).

    python3 app/services.py [notifier slack_socket who_is_home s3_upload watchdog]

A thin shell: the standard and compact layouts start this instead of app/notifier.py,
app/slack_socket.py, app/who_is_home.py, app/s3_upload.py and app/watchdog.py, which still run
one service each.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts app/ first on sys.path, where pycam's module names (utils,
    # keys...) would shadow libraries'; the package is imported from the project root instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from app.together import SERVICES, run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run(sys.argv[1:] or list(SERVICES)))
