"""Fills BasicSR's registries from our sub-packages, the way BasicSR does for its own."""
import importlib
from os import path as osp

from undersr import basicsr_fixes

from basicsr.utils import scandir


def register_package(package_name, init_file, suffix):
    """Imports every ``*<suffix>.py`` module beside ``init_file``; their decorators register the classes.

    Args:
        package_name (str): The sub-package, e.g. ``'undersr.archs'``.
        init_file (str): Its ``__init__.py`` path.
        suffix (str): File-name suffix to scan for, e.g. ``'_arch.py'``.
    """
    basicsr_fixes.apply()
    folder = osp.dirname(osp.abspath(init_file))
    for name in sorted(scandir(folder, suffix=suffix)):
        importlib.import_module(f'{package_name}.{osp.splitext(name)[0]}')
