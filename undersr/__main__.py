"""``python -m undersr``: the ``undersr`` command (see :mod:`undersr.cli`)."""
from undersr.cli import main

main()
