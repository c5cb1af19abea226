"""The sections of pycam's settings, one module per concern (as frigate's config/ package).

`config.py` at the repo root assembles them into `Settings` and loads it; import the models from
there. Nothing here imports from `app`: the settings are read before anything else runs.
"""
