"""Measurements (speed, memory, detection quality): run from the repo root as `python3 -m bench.NAME`."""
