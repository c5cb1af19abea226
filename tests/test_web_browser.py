"""The web page end to end in a real browser: Debian's Chromium driven by Selenium, against the real
gunicorn (the README's line) and a real camera daemon on a clip, with real Redis.

Log in (a wrong password refused first), see the live image change, open an event and play its
clip, disarm and see `camera_status` change in Redis; a POST without its CSRF token is refused.
With PYCAM_SCREENSHOTS=1 it saves a screenshot of each page under imgs/ (for the README).
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from app import keys, state
from tests.conftest import ROOT, free_port, process_env, wait_for

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (requirements-dev.txt)")
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER) or not shutil.which("ffmpeg"),
    reason="needs Debian's chromium, chromium-driver and ffmpeg (.ci/run installs them)")
GUNICORN = Path(sys.executable).parent / "gunicorn"
PASSWORD = "a long enough password"
SHOTS = os.environ.get("PYCAM_SCREENSHOTS") == "1"


@pytest.fixture
def home(tmp_path, redis_url, short_clip):
    """gunicorn with the web page and a password, and the camera daemon armed on a looping clip."""
    data = tmp_path / "data"
    cfg = tmp_path / "pycam.yaml"
    cfg.write_text("camera:\n  loop: true\npantilt:\n  enabled: 'off'\nclips:\n  post_s: 1\n  max_s: 6\n"
                   "heartbeat_s: 1\n")
    env = process_env(REDIS_URL=redis_url, PYCAM_DATA_DIR=str(data), PYCAM_CONFIG=str(cfg), PYCAM_WEB="1",
                      PYCAM_SOURCE=short_clip)
    # The owner sets the password with the CLI, as the README says.
    subprocess.run([sys.executable, "-m", "app.cli", "web-password"], cwd=ROOT, env=env, check=True,
                   input=f"{PASSWORD}\n{PASSWORD}\n", text=True, capture_output=True)
    port = free_port()
    web = subprocess.Popen([str(GUNICORN), "-c", "gunicorn.conf", "run_flask", "--bind", f"127.0.0.1:{port}"],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    camera = subprocess.Popen([sys.executable, "app/security_system.py", "--arm"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _answers(url, web), timeout=20)
        yield url, data
    finally:
        for proc in (web, camera):
            proc.send_signal(signal.SIGTERM)
        for proc in (web, camera):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def _answers(url, proc) -> bool:
    if proc.poll() is not None:
        pytest.fail(f"gunicorn exited: {proc.stderr.read()[-2000:]}")
    try:
        return requests.get(url + "/healthz", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False


@pytest.fixture
def browser(tmp_path):
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                 "--no-first-run", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--autoplay-policy=no-user-gesture-required", "--window-size=412,915",
                 f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(20)
    yield driver
    driver.quit()


def shot(driver, name: str) -> None:
    if SHOTS:
        (ROOT / "imgs").mkdir(exist_ok=True)
        driver.save_screenshot(str(ROOT / "imgs" / f"web-{name}.png"))


def test_log_in_watch_live_play_a_clip_and_disarm(home, browser, r):
    from selenium.webdriver.common.by import By
    url, data = home
    browser.get(url + "/events")                                    # not logged in: the login page
    assert browser.current_url.endswith("/login")
    browser.find_element(By.ID, "password").send_keys("not the password")
    browser.find_element(By.ID, "login").click()
    [error] = wait_for(lambda: browser.find_elements(By.ID, "error"), timeout=10)   # the next page
    assert "Wrong password" in error.text
    shot(browser, "login")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.ID, "login").click()
    wait_for(lambda: browser.current_url.endswith("/events"), timeout=10)   # a click does not wait for the page

    # The live view: the camera starts sending once the page is open, and the picture moves.
    browser.get(url + "/live")
    image = browser.find_element(By.ID, "live")
    wait_for(lambda: browser.execute_script("return arguments[0].naturalWidth", image) > 0, timeout=15)
    first = image.screenshot_as_png
    assert wait_for(lambda: image.screenshot_as_png != first, timeout=10)
    assert r.exists(keys.LIVE_VIEWER)
    shot(browser, "live")

    # An event with its clip: listed, opened, played.
    def event_with_clip():
        for _, fields in r.xrange(keys.EVENTS):
            meta_file = data / json.loads(fields["event"])["snapshot"].replace(".jpg", ".json")
            meta = json.loads(meta_file.read_text())
            if meta.get("clip"):
                return meta
        return None
    meta = wait_for(event_with_clip, timeout=60, every=0.5)
    browser.get(url + "/events")
    browser.find_element(By.ID, f"event-{meta['id']}").click()
    wait_for(lambda: browser.current_url.endswith(f"/events/{meta['id']}"), timeout=10)
    video = browser.find_element(By.ID, "clip")
    browser.execute_script("arguments[0].play()", video)
    wait_for(lambda: browser.execute_script("return arguments[0].currentTime", video) > 0.5, timeout=15)
    assert browser.execute_script("return arguments[0].videoWidth", video) == 640
    shot(browser, "event")
    browser.get(url + "/events")
    shot(browser, "events")

    # Disarm from the page: the camera's switch in Redis follows.
    assert state.get_flag(r, keys.CAMERA_STATUS) is True
    browser.find_element(By.ID, "switch-off").click()
    wait_for(lambda: state.get_flag(r, keys.CAMERA_STATUS) is False, timeout=5)
    wait_for(lambda: "pycam is disarmed." in browser.find_element(By.TAG_NAME, "main").text, timeout=5)

    # The same session's cookie without the page's CSRF token: refused, nothing changes.
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    assert requests.post(url + "/switch", data={"name": "on"}, cookies=cookies, timeout=5,
                         allow_redirects=False).status_code == 403
    assert state.get_flag(r, keys.CAMERA_STATUS) is False
