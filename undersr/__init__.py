"""undersr: undertrained image reconstruction as a realistic degradation for blind SR (arXiv 2503.02767).

Importing this package is cheap: it only records the version and installs the torchvision shim that
BasicSR 1.4.2 needs (see :mod:`undersr.compat`). The registries are filled by importing
``undersr.archs``, ``undersr.data`` and ``undersr.models``.
"""
from undersr.compat import install_torchvision_shim

__version__ = '0.1.0'

install_torchvision_shim()
