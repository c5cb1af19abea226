"""What every daemon does first: settings, a usable data dir, logging, signals, a Redis client."""
from __future__ import annotations

import config
from app import state, utils


def start(name: str, logs: bool = True, **redis_options):
    """(settings, Redis client, stop flag) for the daemon `name`; exits with one line when the
    settings or the data dir are not usable."""
    settings = config.load_or_exit()
    if logs:
        utils.check_data_dir(settings.data_dir)
    utils.setup_logging(name, settings.log_level, settings.logs_dir if logs else None)
    stop = utils.StopFlag().install()
    return settings, state.connect(settings.redis_url, name, **redis_options), stop
