"""The camera daemon's wing: sources, detection, the event trigger, verification, the recorder,
pan-tilt, replay and training of the owner's classifier (docs/architecture.md has the map)."""
