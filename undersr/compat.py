"""Compatibility with current PyTorch/torchvision that must exist before BasicSR is imported.

BasicSR 1.4.2 (the newest release on PyPI) does ``from torchvision.transforms.functional_tensor import
rgb_to_grayscale``. torchvision 0.17 removed that private module; the function lives on in
``torchvision.transforms.functional``. We register a lazy import hook for the old name, so that neither
torchvision nor BasicSR is imported until somebody asks for them, and an old torchvision that still ships
the module keeps its own.
"""
import importlib.abc
import importlib.machinery
import sys

LEGACY_MODULE = 'torchvision.transforms.functional_tensor'


class _FunctionalTensorAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves :data:`LEGACY_MODULE` to ``torchvision.transforms.functional`` when torchvision lacks it."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != LEGACY_MODULE:
            return None
        # Ask the other finders first: torchvision < 0.17 still has the real module.
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, 'find_spec'):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                return spec
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        functional = importlib.import_module('torchvision.transforms.functional')
        module.__getattr__ = lambda name: getattr(functional, name)  # PEP 562 forwarding


def install_torchvision_shim():
    """Makes ``import torchvision.transforms.functional_tensor`` work on any torchvision. Idempotent."""
    if not any(isinstance(f, _FunctionalTensorAlias) for f in sys.meta_path):
        sys.meta_path.append(_FunctionalTensorAlias())
