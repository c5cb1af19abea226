"""The watchdog: what the owner is told about pycam itself (processes, Redis, the Pi's power)."""
