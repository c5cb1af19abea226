"""pycam: a Raspberry Pi home security system (see README.md)."""
