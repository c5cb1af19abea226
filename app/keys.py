"""Every Redis key pycam uses, in one place. Values are JSON; never pickle or eval them.

The original system's names are kept where they existed (camera_status, camera_notifications,
auto_detect_status, home).
"""

# Flags (JSON booleans).
CAMERA_STATUS = "camera_status"                # armed: the camera loop processes frames only while true
CAMERA_NOTIFICATIONS = "camera_notifications"  # alerts go to Slack (events are recorded either way)
AUTO_DETECT_STATUS = "auto_detect_status"      # who_is_home may arm and disarm
TRAINING_MODE = "training_mode"                # alerts carry Occupied / Unoccupied buttons

FLAG_DEFAULTS = {
    CAMERA_STATUS: False,
    CAMERA_NOTIFICATIONS: True,
    AUTO_DETECT_STATUS: False,
    TRAINING_MODE: False,
}

# Presence.
HOME = "home"                                  # JSON list of names home now
PRESENCE_LAST_SEEN = "presence:last_seen"      # hash: person name -> epoch seconds last seen
SCHEDULE = "schedule"                          # JSON {arm: [window], quiet: [window]} set from Slack; absent: pycam.yaml's (app/schedule.py)
MANUAL_OVERRIDE = "presence:manual"            # JSON {state, home, time}: a manual /pycam_on|off holds until `home` changes
PRESENCE_STATUS = "presence:status"            # JSON {time, home, no_data, providers: {name: {ok, error, seen, ms}}}: last poll, for /pycam_status

# Cameras (app/cameras.py): several camera daemons on one Redis, each by its `camera.name`.
CAMERAS = "cameras"                            # hash: camera name -> JSON {time, state, armed}: each camera's last beat


def camera(name: str, what: str) -> str:
    """A camera's own key: camera:<name>:armed (JSON bool: overrides camera_status for this camera
    alone), :pantilt (its target), :position (where it points), :latest (its newest snapshot)."""
    return f"camera:{name}:{what}"


# Pan-Tilt HAT.
PANTILT = "pantilt"                            # JSON {pan, tilt}: the target, written by /rotate
PANTILT_POSITION = "pantilt:position"          # JSON {pan, tilt, present, time}: what the camera daemon reports

# Events and images.
EVENTS = "events"                              # stream: field "event" = JSON metadata of one motion event
LATEST_IMAGE = "latest_image"                  # JSON {event_id, path, time}: the newest snapshot
UNVERIFIED_COUNT = "events:unverified"         # integer: events recorded but not notified (verifier said no)

# Live view (app/live.py): image bytes only in flight, never stored.
LIVE_VIEWER = "live:viewer"                    # set (with a short TTL) while someone watches: the camera sends frames
LIVE_FRAMES = "live:frames"                    # pub/sub channel: 8-byte big-endian capture time (ms) + JPEG

# Slack: the home's outbox and the notifier's marks for it. A camera Pi that sends its own images
# (role: camera) has the same keys under camera:<name>:slack: (outbox_prefix, app/outbox.py's Box).
SLACK_OUTBOX = "slack:outbox"                  # stream: field "job" = JSON job for the notifier
SLACK_OUTBOX_GROUP = "notifier"                # consumer group reading SLACK_OUTBOX
# slack:delivered:<job>  set once Slack accepted the job (idempotency)
# slack:uploaded:<job>   the job's image upload finished (JSON {file_id})
# slack:inflight:<job>   hash of the job's Slack steps (post, upload) -> when an attempt began whose answer never came
SLACK_PARKED = "slack:parked"                  # list of JSON {job, error, time}: jobs that failed unexpectedly, set aside

# S3.
S3_STATUS = "s3:status"                        # JSON {ok, error, pending, uploaded, time}

HEARTBEAT_PREFIX = "heartbeat:"                # + process name (app/health.py lists them)
DIGEST_SENT_PREFIX = "digest:sent:"           # + local date: the daily digest was queued (app/watch/digest.py)
ALARMS_LOG = "alarms:log"                      # list of JSON {name, since, text}, newest first, capped: problems told (the digest)
ALARMS = "alarms"                              # hash: alarm name -> JSON {since, text}: problems the owner was told of (app/alarms.py)


def outbox_prefix(camera_name: str | None) -> str:
    """Where an outbox and its marks live: the home's (slack:outbox, slack:delivered:<job>...) or
    a camera Pi's own (camera:<name>:slack:outbox...), which only that Pi's notifier reads."""
    return "slack:" if camera_name is None else camera(camera_name, "slack:")


def heartbeat(process: str) -> str:
    """Key of a process's heartbeat: JSON {time, pid, state, detail} with a TTL."""
    return HEARTBEAT_PREFIX + process


def slack_seen(signature: str) -> str:
    """Key remembering a Slack request signature for the replay window (a replay is refused)."""
    return "slack:seen:" + signature[-64:]


def event_published(event_id: str) -> str:
    """Key marking an event as added to the events stream (and its alert queued)."""
    return "event:published:" + event_id
