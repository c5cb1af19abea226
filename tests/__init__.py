"""pycam's test suite: real Redis, the real Slack SDK against local fakes, moto, gunicorn, glances."""
