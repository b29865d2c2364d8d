"""Registers every `*_dataset.py` module of this folder with BasicSR's registry."""
from undersr.registry import register_package

register_package(__name__, __file__, '_dataset.py')
