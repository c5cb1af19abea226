"""The `pycam` command as an owner types it: `pycam doctor` says what works and what to do."""
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, process_env
from tests.slack_fakes import CHANNEL, TOKEN, FakeSlack

PYCAM = Path(sys.executable).parent / "pycam"


@pytest.fixture
def fake():
    server = FakeSlack().start()
    yield server
    server.close()


def doctor(env):
    return subprocess.run([str(PYCAM), "doctor"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)


def test_doctor_says_each_broken_part_on_its_own_line(tmp_path, fake):
    env = process_env(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", PYCAM_DATA_DIR=str(tmp_path / "data"),
                      PYCAM_SOURCE=str(tmp_path / "no-such-camera.mp4"), SLACK_BOT_TOKEN="xoxb-wrong",
                      SLACK_CHANNEL_ID=CHANNEL, SLACK_API_URL=fake.api_url)
    run = doctor(env)
    assert run.returncode == 1, run.stdout + run.stderr
    lines = {line.split()[1]: line for line in run.stdout.splitlines()}
    assert lines["settings"].startswith("ok") and lines["data"].startswith("ok")
    assert lines["redis"].startswith("FAIL") and "nothing answers" in lines["redis"]
    assert lines["camera"].startswith("FAIL") and "camera.source" in lines["camera"]
    assert lines["slack"].startswith("FAIL") and "refused the bot token" in lines["slack"]
    assert lines["s3"].startswith("off") and lines["presence"].startswith("off")
    assert "Traceback" not in run.stdout + run.stderr


def test_doctor_is_all_clear_when_everything_answers(tmp_path, fake, redis_url):
    env = process_env(REDIS_URL=redis_url, PYCAM_DATA_DIR=str(tmp_path / "data"),
                      PYCAM_SOURCE=str(ROOT / "sample" / "one-by-one-person-detection.mp4"),
                      SLACK_BOT_TOKEN=TOKEN, SLACK_CHANNEL_ID=CHANNEL, SLACK_API_URL=fake.api_url)
    run = doctor(env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "FAIL" not in run.stdout and "a 768x432 frame" in run.stdout and "bot pycam" in run.stdout
