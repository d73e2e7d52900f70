"""``python -m segmentsync.sandbox``: the same as ``segmentsync sandbox``."""

from segmentsync.sandbox.cli import app

app()
