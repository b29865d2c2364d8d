"""``undersr generate``: (HR, degraded LR) training pairs made offline with undertrained reconstruction networks.

The data-generation step of arXiv 2503.02767: every HR image (or random crop) is downscaled with MATLAB-compatible
bicubic ×scale and passed through an undertrained reconstruction network (:class:`undersr.degrade.Degrader`); the
imperfect reconstruction is the degraded LR. This package reads, crops, shards, writes and resumes; the manual
(arguments, output layout, determinism, resumption, durability) is docs/generate.md.

Modules: :mod:`~undersr.generate.samples` (slots, keys, crops, seeds), :mod:`~undersr.generate.reader` (decoding),
:mod:`~undersr.generate.compute` (degrading a chunk), :mod:`~undersr.generate.staging` (staging and resumption),
:mod:`~undersr.generate.writers` (LMDB, folders, manifest), :mod:`~undersr.generate.runner` (processes and the
main loop). The command line is :mod:`undersr.cli.generate`; ``main``, ``build_parser`` and ``parse_args`` are
re-exported from it on first use (it imports this package, so it cannot be imported here).
"""
from undersr.generate.compute import to_bgr_uint8
from undersr.generate.errors import GenerateError, WriteError
from undersr.generate.runner import run
from undersr.generate.samples import derive_seed, output_keys, sample_seed

_CLI_NAMES = ('main', 'build_parser', 'parse_args')
__all__ = ['GenerateError', 'WriteError', 'derive_seed', 'output_keys', 'run', 'sample_seed', 'to_bgr_uint8',
           *_CLI_NAMES]


def __getattr__(name):
    """``main``, ``build_parser`` and ``parse_args`` of :mod:`undersr.cli.generate` (PEP 562)."""
    if name in _CLI_NAMES:
        from undersr.cli import generate as cli
        return getattr(cli, name)
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
