"""Settings: defaults, YAML, environment, and clear errors for bad values."""
import pytest

import config
from config import ConfigError, load_settings


def test_defaults_watch_the_camera_not_the_demo_clip():
    """Under systemd or nohup the Pi must watch its camera: the bundled clip is only `make run`'s."""
    s = load_settings(env={}, config_path=None)
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.camera.source == "auto"
    assert s.slack.api_url == "https://slack.com/api/"


def test_yaml_then_environment_take_precedence(tmp_path):
    f = tmp_path / "pycam.yaml"
    f.write_text("motion:\n  threshold: 30\ncamera:\n  source: '0'\n")
    s = load_settings(env={"PYCAM_SOURCE": "rtsp://cam/stream", "SLACK_ALLOWED_USERS": "U1, U2"},
                      config_path=f)
    assert s.motion.threshold == 30
    assert s.camera.source == "rtsp://cam/stream"
    assert s.slack.allowed_users == ["U1", "U2"]


def test_bad_value_names_key_value_and_what_is_allowed(tmp_path):
    f = tmp_path / "pycam.yaml"
    f.write_text("motion:\n  threshold: 900\n  blur: 4\n")
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, config_path=f)
    msg = str(e.value)
    assert "motion.threshold = 900" in msg and "less than or equal to 255" in msg
    assert "motion.blur = 4" in msg and "odd" in msg


def test_unknown_setting_is_refused(tmp_path):
    f = tmp_path / "pycam.yaml"
    f.write_text("motion:\n  treshold: 10\n")
    with pytest.raises(ConfigError, match="motion.treshold"):
        load_settings(env={}, config_path=f)


def test_secret_in_yaml_is_refused_and_never_echoed(tmp_path):
    f = tmp_path / "pycam.yaml"
    f.write_text("slack:\n  signing_secret: hunter2\n")
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, config_path=f)
    assert "environment" in str(e.value) and "hunter2" not in str(e.value)


def test_bad_secret_value_is_hidden_in_the_error():
    with pytest.raises(ConfigError) as e:
        load_settings(env={"SLACK_BOT_TOKEN": "x" * 5, "SLACK_CHANNEL_ID": "general"})
    assert "slack.channel_id = 'general'" in str(e.value)


def test_dotenv_file_is_read(tmp_path):
    env = tmp_path / ".env"
    env.write_text("# secrets\nexport SLACK_SIGNING_SECRET='abc'\nREDIS_URL=redis://x:1/2\n")
    assert config.read_dotenv(env) == {"SLACK_SIGNING_SECRET": "abc", "REDIS_URL": "redis://x:1/2"}


def test_missing_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the file"):
        load_settings(env={"PYCAM_CONFIG": str(tmp_path / "nope.yaml")})


def test_daemon_exits_with_the_error_message(tmp_path):
    with pytest.raises(SystemExit) as e:
        config.load_or_exit(env={"REDIS_URL": "http://localhost"})
    assert "redis_url" in str(e.value)


def test_every_setting_is_documented():
    from config import ROOT, settings_table
    doc = (ROOT / "docs" / "settings.md").read_text()
    keys = [line.split("`")[1] for line in settings_table().splitlines()[2:]]
    missing = [k for k in keys if f"`{k}`" not in doc]
    assert not missing, f"run `python3 config.py` and paste the table into docs/settings.md: {missing}"


def test_dotenv_comments_after_a_value_are_not_part_of_it(tmp_path):
    """The docs' .env example has comments after the values; a secret must not swallow them."""
    env = tmp_path / ".env"
    env.write_text("SLACK_SIGNING_SECRET=8f74a5   # Basic Information -> App Credentials\n"
                   "SLACK_CHANNEL_ID=C0123456\t# the channel\nSLACK_BOT_TOKEN='xoxb-1 # kept' # note\n")
    assert config.read_dotenv(env) == {"SLACK_SIGNING_SECRET": "8f74a5", "SLACK_CHANNEL_ID": "C0123456",
                                       "SLACK_BOT_TOKEN": "xoxb-1 # kept"}


def test_owner_files_reach_the_daemons_but_never_settings_built_from_given_values(tmp_path, clean_env):
    """The .env and pycam.yaml an owner creates are read by the daemons, not by tests or tools."""
    (tmp_path / ".env").write_text("REDIS_URL=redis://from-dotenv:1/0\n")
    (tmp_path / "pycam.yaml").write_text("motion:\n  threshold: 99\n")
    clean_env.setattr(config, "ROOT", tmp_path)
    given = config.load_settings(env={})
    assert given.redis_url == "redis://localhost:6379/0" and given.motion.threshold == 20
    clean_env.delenv("PYCAM_ENV_FILE")
    clean_env.delenv("PYCAM_CONFIG")
    daemon = config.load_settings()
    assert daemon.redis_url == "redis://from-dotenv:1/0" and daemon.motion.threshold == 99
    clean_env.setenv("PYCAM_ENV_FILE", "")     # what the test suite sets for every process it starts
    clean_env.setenv("PYCAM_CONFIG", "")
    hermetic = config.load_settings()
    assert hermetic.redis_url == "redis://localhost:6379/0" and hermetic.motion.threshold == 20


def test_a_daemon_sees_the_dotenv_variables_libraries_read_themselves(tmp_path, clean_env):
    """boto3 reads AWS_* from the environment: started by hand, a daemon still finds them in .env."""
    env_file = tmp_path / ".env"
    env_file.write_text("export AWS_ACCESS_KEY_ID=AKIATESTKEY  # from the console\n")
    clean_env.setenv("AWS_ACCESS_KEY_ID", "")          # so the test's change is undone afterwards
    clean_env.delenv("AWS_ACCESS_KEY_ID")
    clean_env.setenv("PYCAM_ENV_FILE", str(env_file))
    import os
    config.load_or_exit()
    assert os.environ["AWS_ACCESS_KEY_ID"] == "AKIATESTKEY"


@pytest.mark.parametrize("yaml_text, named", [
    ("presence:\n  providers:\n    - {type: router, devices_url: 'http://admin:hunter2@192.168.1.1/devices'}\n",
     "devices_url"),                                                    # in a URL
    ("slack:\n  sigining_secret: hunter2\n", "sigining_secret"),     # under a misspelt key
    ("presence:\n  providers:\n"                                      # in a request body, then refused
     "    - {type: router, name: r2, devices_url: 'http://r/', devices_json: {password: hunter2}}\n"
     "    - {type: router, name: r2, devices_url: 'http://r/'}\n", "own name"),
])
def test_no_error_message_shows_a_password_however_it_is_written(tmp_path, yaml_text, named):
    f = tmp_path / "pycam.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_settings(env={}, config_path=f)
    assert named in str(e.value) and "hunter2" not in str(e.value), str(e.value)


def test_each_camera_on_a_pi_reads_its_own_env_file_over_the_shared_one(tmp_path, clean_env):
    """Two cameras on one Pi: `--camera garage` (PYCAM_CAMERA_NAME) reads .env.garage over .env;
    the other camera and a name that is no name read .env alone."""
    env_file = tmp_path / ".env"
    env_file.write_text("PYCAM_SOURCE=/dev/video0\nREDIS_URL=redis://hub:6379/0\nPYCAM_CAMERAS=front,garage\n")
    (tmp_path / ".env.garage").write_text("PYCAM_SOURCE=/dev/video2\n")
    (tmp_path / ".env.x").write_text("PYCAM_SOURCE=/dev/evil\n")
    clean_env.setenv("PYCAM_ENV_FILE", str(env_file))
    clean_env.setenv("PYCAM_CONFIG", "")
    clean_env.setenv("PYCAM_CAMERA_NAME", "garage")
    garage = config.load_settings()
    assert (garage.camera.name, garage.camera.source, garage.redis_url) == ("garage", "/dev/video2", "redis://hub:6379/0")
    assert garage.camera_names == ["front", "garage"]
    clean_env.setenv("PYCAM_CAMERA_NAME", "front")
    assert config.load_settings().camera.source == "/dev/video0"
    clean_env.setenv("PYCAM_CAMERA_NAME", "../x")
    with pytest.raises(config.ConfigError, match="camera.name"):
        config.load_settings()


@pytest.mark.parametrize("value, message", [("front,front", "named twice"), ("front,a b", "not a camera name")])
def test_a_bad_camera_list_is_refused(value, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load_settings(env={"PYCAM_CAMERAS": value})


def test_glances_expects_each_camera_and_on_a_camera_pi_only_its_processes():
    import configparser
    from app.watch import glances_conf

    def rendered(**env):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(glances_conf.render(glances_conf.SOURCE.read_text(), config.load_settings(env=env)))
        return parser

    one = rendered()
    assert (one["amp_security_system"]["countmin"], one["amp_security_system"]["countmax"]) == ("1", "1")
    two = rendered(PYCAM_CAMERAS="front,garage")
    assert (two["amp_security_system"]["countmin"], two["amp_security_system"]["countmax"]) == ("2", "2")
    assert two["amp_watchdog"]["enable"] == "true"
    pi = rendered(PYCAM_ROLE="camera")
    assert pi["amp_notifier"]["enable"] == "true" and pi["amp_security_system"]["enable"] == "true"
    assert all(pi[s]["enable"] == "false" for s in ("amp_watchdog", "amp_slack_socket", "amp_redis", "amp_flask_app"))


def test_a_camera_started_by_a_launcher_takes_its_own_file_over_the_exported_env(tmp_path, short_clip):
    """systemd and scripts/pycam export .env first; `--camera garage` still reads .env.garage over it."""
    import subprocess
    import sys
    from tests.conftest import process_env
    env_file = tmp_path / ".env"
    env_file.write_text("PYCAM_SOURCE=/nowhere/front.mp4\n")
    (tmp_path / ".env.garage").write_text(f"PYCAM_SOURCE={short_clip}\n")
    env = process_env(PYCAM_ENV_FILE=str(env_file), PYCAM_SOURCE="/nowhere/front.mp4", PYCAM_DATA_DIR=str(tmp_path))
    out = tmp_path / "events.jsonl"
    run = subprocess.run([sys.executable, "app/security_system.py", "--camera", "garage", "--replay", "--events-out",
                          str(out)], cwd=config.ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and out.exists(), run.stderr
    refused = subprocess.run([sys.executable, "app/security_system.py", "--camera", "../garage", "--replay",
                              "--events-out", str(out)], cwd=config.ROOT, env=env, capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode != 0 and "a camera name is" in refused.stderr


def test_a_camera_pi_runs_one_camera():
    with pytest.raises(config.ConfigError, match="runs one camera"):
        config.load_settings(env={"PYCAM_ROLE": "camera", "PYCAM_CAMERAS": "front,garage"})
    assert config.load_settings(env={"PYCAM_ROLE": "camera", "PYCAM_CAMERAS": "garage"}).camera_names == ["garage"]
