"""gunicorn's entry point for the Slack app: `gunicorn -c gunicorn.conf run_flask`.

gunicorn looks for `application` in a bare module name. Settings come from the environment, .env
and PYCAM_CONFIG like every other pycam process; a bad setting or a missing SLACK_SIGNING_SECRET
stops the workers at start with a one-line message.
"""
import sys

import config
from app import utils
from app.flask_app import MissingSecretError, create_app

# Exit status 4 is gunicorn's "application failed to load": the master then stops, rather than
# restarting workers that can never start.
APP_LOAD_ERROR = 4

try:
    settings = config.load_settings()
except config.ConfigError as e:
    print(f"pycam: {e}", file=sys.stderr)
    raise SystemExit(APP_LOAD_ERROR) from None
utils.setup_logging("flask_app", settings.log_level, settings.logs_dir)
try:
    application = create_app(settings)
except MissingSecretError as e:
    print(f"pycam: {e}", file=sys.stderr)
    raise SystemExit(APP_LOAD_ERROR) from None
