"""The preflight of ``train.py`` and ``test.py``: BasicSR's arguments plus ``--check``, exit status 2 on failure."""
import argparse
import os
import sys

from undersr.preflight.checks import check, format_findings, load_options

import yaml


def build_parser(is_train):
    """BasicSR's arguments (so ``--auto_resume``, ``--force_yml``, ``--launcher`` mean the same) plus ``--check``."""
    script = 'train.py' if is_train else 'test.py'
    parser = argparse.ArgumentParser(prog=script, description=f'BasicSR\'s {script} with undersr; every input is '
                                     'checked first (undersr.preflight).')
    parser.add_argument('-opt', required=True, help='Path to option YAML file.')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none', help='job launcher')
    parser.add_argument('--auto_resume', action='store_true')
    parser.add_argument('--debug', action='store_true')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    parser.add_argument('--force_yml', nargs='+', default=None, help='e.g. train:ema_decay=0.999')
    parser.add_argument('--check', action='store_true', help='only check the inputs: list every path, present or '
                        'missing, and exit (0: all present, 2: some missing)')
    return parser


def main(argv, is_train, root_path):
    """The preflight of ``train.py``/``test.py``: returns when the run may start, else exits with status 2.

    With ``--check`` it always exits: 0 when every input is present, 2 otherwise. Under a launcher every process
    checks, and only rank 0 prints.

    Args:
        argv (list[str]): The script's arguments (``sys.argv[1:]``).
        is_train (bool): ``train.py`` or ``test.py``.
        root_path (str): BasicSR's root (the folder of the script).
    """
    args, _ = build_parser(is_train).parse_known_args(argv)
    rank = int(os.environ.get('SLURM_PROCID' if args.launcher == 'slurm' else 'RANK', 0)) \
        if args.launcher != 'none' else 0

    def say(text, stream=sys.stdout):
        if rank == 0 and text:
            print(text, file=stream, flush=True)

    try:
        opt = load_options(args.opt, args.force_yml, args.debug)
    except (OSError, ValueError, yaml.YAMLError) as err:
        say(f'preflight: cannot read options {args.opt}: {err}', sys.stderr)
        sys.exit(2)
    findings = check(opt, is_train, '.', args.auto_resume, root_path)  # relative paths: as BasicSR, from the cwd
    blocking = [f for f in findings if f.blocking]
    if args.check:
        paths = [f for f in findings if f.kind != 'key']
        say(format_findings(findings))
        say(f'preflight: {sum(f.present for f in paths)} of {len(paths)} inputs of {args.opt} present, '
            f'{len(blocking)} problem(s)' + (', nothing to do before the run' if not blocking else ''))
        sys.exit(2 if blocking else 0)
    if blocking:
        say(f'preflight: {args.opt} cannot run, nothing was started; {len(blocking)} problem(s):', sys.stderr)
        say(format_findings(findings, only_missing=True), sys.stderr)  # the warnings too: all to fetch at once
        say(f'(python {"train" if is_train else "test"}.py -opt {args.opt} --check lists every input)', sys.stderr)
        sys.exit(2)
    say(format_findings([f for f in findings if f.warning]), sys.stderr)
