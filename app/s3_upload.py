"""The S3 uploader: labelled training data and (opt-in) event snapshots to S3.

    python3 app/s3_upload.py [--once]

A thin shell: the code is in app.storage.daemon. Keep this path: glances, systemd and the docs start it by it.
"""
import sys
from pathlib import Path

if __name__ == "__main__":
    # Run as a script, Python puts app/ first on sys.path, where pycam's module names (utils,
    # keys...) would shadow libraries'; the package is imported from the project root instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from app.storage.daemon import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
