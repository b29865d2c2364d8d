"""``undersr generate``: (HR, degraded LR) training pairs made offline (see :mod:`undersr.generate`)."""
from undersr.generate import build_parser, main  # noqa: F401
