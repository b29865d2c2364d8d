"""``python -m undersr.generate`` and ``torchrun ... -m undersr.generate``: the same as ``undersr generate``."""
from undersr.cli.generate import main

main()
