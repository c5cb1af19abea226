"""What pycam keeps on disk and sends off it: the event store, the training labels, S3 uploads."""
