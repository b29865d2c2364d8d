"""The ``undersr`` command: one entry point, one module per subcommand.

``undersr COMMAND [ARGS...]`` imports the module of ``COMMAND`` only when it runs and calls its
``main(argv)`` with the remaining arguments, so ``undersr --help`` stays fast (no torch import). A new subcommand
is one line in :data:`SUBCOMMANDS`.

Example:
    .. code-block:: bash

        undersr --help
        undersr generate --help
        undersr generate --hr datasets/DF2K/HR --recon net_g_ep2.pth --out datasets/DF2K_under
"""
import argparse
import importlib
import sys

# name -> (module with a main(argv) function, one-line description)
SUBCOMMANDS = {
    'generate': ('undersr.generate', 'make (HR, degraded LR) training pairs offline with undertrained networks'),
    'demo': ('undersr.demo', "the paper's experiment in miniature on scikit-image photos (the main job)"),
    'analyze': ('undersr.analysis.cli_analyze', 'colour shift and degradation diversity of datasets (paper 4.3)'),
    'train-degradation-classifier': ('undersr.analysis.cli_classifier', 'train the corruption-type classifier'),
    'compare': ('undersr.analysis.compare', 'tabulate test results of several models against a baseline'),
}


def build_parser():
    """The top-level parser: a subcommand name followed by that subcommand's own arguments."""
    listing = '\n'.join(f'  {name:<12} {text}' for name, (_, text) in SUBCOMMANDS.items())
    parser = argparse.ArgumentParser(
        prog='undersr', formatter_class=argparse.RawDescriptionHelpFormatter,
        description='Undertrained image reconstruction as a realistic degradation for blind SR (arXiv 2503.02767).',
        epilog=f'subcommands:\n{listing}\n\n"undersr COMMAND --help" describes the arguments of COMMAND.')
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
    if not argv or argv[0].startswith('-'):  # only top-level options, e.g. --help
        parser.parse_args(argv)
    command, rest = argv[0], argv[1:]
    if command not in SUBCOMMANDS:
        parser.error(f'unknown command {command!r} (choose from {", ".join(SUBCOMMANDS)})')
    module = importlib.import_module(SUBCOMMANDS[command][0])
    module.main(rest)


if __name__ == '__main__':
    main()
