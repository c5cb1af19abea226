"""Frame times, one arithmetic for the live camera and replay.

A frame's time is epoch seconds in a float64: the wall clock live, the clock origin plus the
position in the file in replay (`--clock-origin`, default now). Only differences of frame times
are ever used, and they carry about a microsecond of rounding at epoch magnitudes, different at
each origin; comparing them with this tolerance makes "1.5 s later" the same frame at any origin.
Never store frame times in float32: at 1.8e9 it steps in 128 s.
"""
EPS = 1e-3


def elapsed(now: float, since: float, seconds: float) -> bool:
    """At least `seconds` have passed from `since` to `now` (frame times)."""
    return now - since >= seconds - EPS
