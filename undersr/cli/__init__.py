"""The ``undersr`` command: one entry point, one module of :mod:`undersr.cli` per subcommand.

``undersr COMMAND [ARGS...]`` imports ``undersr.cli.<command>`` only when it runs and calls its ``main(argv)`` with
the remaining arguments, so ``undersr --help`` and ``undersr --version`` stay fast (no torch import). A new
subcommand is one module with a ``main(argv)`` and one line in :data:`SUBCOMMANDS`. ``python -m undersr`` is the
same command.

Example:
    .. code-block:: bash

        undersr --help
        undersr generate --help
        undersr generate --hr datasets/DF2K/HR --recon net_g_ep2.pth --out datasets/DF2K_under
"""
import argparse
import importlib
import sys

from undersr import __version__

# name -> one-line description; the module is undersr.cli.<name with '-' replaced by '_'>
SUBCOMMANDS = {
    'demo': "the paper's experiment in miniature on scikit-image photos (the main job)",
    'generate': 'make (HR, degraded LR) training pairs offline with undertrained networks',
    'analyze': 'colour shift and degradation diversity of datasets (paper 4.3)',
    'train-degradation-classifier': 'train the corruption-type classifier that analyze uses',
    'compare': 'tabulate test results of several models against a baseline',
    'upscale': 'super-resolve your photos with SR models; --compare: side-by-side page',
    'prepare': 'turn downloaded datasets into the layouts the options read; --check a plan\'s inputs',
    'reproduce': "run a plan of the paper's experiments (Tables 1-2, colour shift) end to end, resumable",
}


def module_name(command):
    """The module that implements ``command``, e.g. ``'undersr.cli.train_degradation_classifier'``."""
    return f'{__name__}.{command.replace("-", "_")}'


def build_parser():
    """The top-level parser: a subcommand name followed by that subcommand's own arguments."""
    width = max(map(len, SUBCOMMANDS))
    listing = '\n'.join(f'  {name:<{width}}  {text}' for name, text in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog='undersr', formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Undertrained image reconstruction as a realistic degradation for blind SR (arXiv 2503.02767).',
        epilog=f'subcommands:\n{listing}\n\n"undersr COMMAND --help" describes the arguments of COMMAND.')
    parser.add_argument('--version', action='version', version=f'undersr {__version__}')
    parser.add_argument('command', choices=tuple(SUBCOMMANDS), metavar='COMMAND',
                        help=f'one of: {", ".join(SUBCOMMANDS)}')
    parser.add_argument('args', nargs=argparse.REMAINDER, metavar='...', help='arguments of COMMAND')
    return parser


def main(argv=None):
    """Runs ``undersr COMMAND ARGS...``.

    Args:
        argv (list[str] | None): Arguments without the program name; default ``sys.argv[1:]``.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or argv[0].startswith('-'):  # only top-level options: --help, --version
        parser.parse_args(argv)
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        parser.error(f'unknown command {command!r} (choose from {", ".join(SUBCOMMANDS)})')
    importlib.import_module(module_name(command)).main(rest)
