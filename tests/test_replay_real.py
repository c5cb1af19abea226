"""Replay at the live clock on the real public clips (../shared/data/real): light switched off and
on, a slow sunrise and dusk, a moved chair, a screen that never stops, clouds over a car park, a
person in view from the first frame. Scored exactly as ../shared/tools/evaluate.py scores."""
import json
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, SHARED_DATA

REAL = SHARED_DATA / "real" / "manifest.json"
CLIPS = json.loads(REAL.read_text())["clips"] if REAL.is_file() else []
pytestmark = pytest.mark.skipif(not CLIPS, reason="../shared/data/real (the real clips) is not beside this checkout")


def score(clip, tmp_path):
    from bench import shared_tools
    out = tmp_path / "events.jsonl"
    proc = subprocess.run([sys.executable, "app/security_system.py", "--replay", "--source",
                           str(REAL.parent / clip["source"]), "--events-out", str(out),
                           "--clock-origin", f"{time.time():.3f}"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    triggers = [json.loads(line)["trigger_frame"] for line in out.read_text().splitlines()]
    return shared_tools.load("evaluate", SHARED_DATA.parent / "tools").score(clip, triggers, clip["frames"])


@pytest.mark.parametrize("clip", CLIPS, ids=[c["name"] for c in CLIPS])
def test_every_visit_is_alerted_with_at_most_one_false_alert(clip, tmp_path):
    result = score(clip, tmp_path)
    assert result["detected"] == result["intervals"], result
    assert result["false"] <= 1, result
