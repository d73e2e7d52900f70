"""``python -m segmentsync.cli_main``: the `segmentsync` command without an installed script."""

from segmentsync.cli import main

main()
