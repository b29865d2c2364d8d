"""``undersr reproduce PLAN``: train, generate, fine-tune, test and tabulate a plan of the paper (docs/reproduce.md).

Example:
    .. code-block:: bash

        undersr reproduce table1 --dry-run          # every command, nothing run
        undersr reproduce table1                    # on the GPUs of this machine, resumable
        undersr reproduce table2 --gpus 8 --gpus-per-run 2 --stages finetune test compare
        undersr reproduce table1 --tiny             # the whole plan on a CPU in minutes (miniature data)
"""
import argparse
import os
from os import path as osp

from undersr.prepare.sources import PrepareError
from undersr.reproduce.plan import PlanError, load_plan
from undersr.reproduce.runner import ReproduceError, Runner
from undersr.reproduce.steps import STAGES, build_steps, plan_dir


def build_parser():
    parser = argparse.ArgumentParser(
        prog='undersr reproduce', description='Run a plan: train the reconstruction networks, generate each '
        'dataset, fine-tune each (backbone, dataset), test, and write the paper\'s table. Complete steps are '
        'skipped, so a rerun resumes.')
    parser.add_argument('plan', help='a plan file, or a built-in plan: table1, table2, colorshift')
    parser.add_argument('--root', help="where datasets/, experiments/ and results/ live (BasicSR's root; default: "
                        'the current folder, with --tiny results/reproduce_tiny/PLAN)')
    parser.add_argument('--stages', nargs='+', choices=STAGES, default=list(STAGES), help='stages to run (all)')
    parser.add_argument('--dry-run', action='store_true', help='print every command; run nothing (option files '
                        'are written so that you can read them)')
    parser.add_argument('--tiny', action='store_true', help='the whole plan on a CPU: tiny networks, a miniature '
                        'of every dataset made from offline photos, a few iterations')
    parser.add_argument('--gpus', type=int, help='GPUs to use (default: all visible; 0 on a CPU-only machine)')
    parser.add_argument('--gpus-per-run', type=int, help='GPUs per fine-tune (default: all); the groups run '
                        'different fine-tunes in parallel')
    parser.add_argument('--launcher', choices=('none', 'pytorch'), default='none',
                        help='pytorch: torchrun ... --launcher pytorch even for one process per fine-tune')
    parser.add_argument('--shard', default='0/1', metavar='I/N', help='this machine runs every N-th step of the '
                        'generate, finetune and test stages, from the I-th (default 0/1)')
    parser.add_argument('--subprocess', action='store_true', help='run every step as a subprocess (default: '
                        'in this process when steps run one after the other)')
    parser.add_argument('--port', type=int, default=29500, help="torchrun's master port of the first GPU group "
                        '(the next groups take the next ports; default %(default)s)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto', help='of undersr generate')
    return parser


def main(argv=None):
    """Runs ``undersr reproduce``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        index, count = (int(x) for x in args.shard.split('/'))
        assert 0 <= index < count
    except (ValueError, AssertionError):
        parser.error(f'--shard {args.shard}: expected I/N with 0 <= I < N')
    try:
        plan = load_plan(args.plan)
        root = args.root or (osp.join('results', 'reproduce_tiny', plan.name) if args.tiny else '.')
        os.makedirs(root, exist_ok=True)
        tiny = None
        if args.tiny:
            from undersr.reproduce import tiny as tiny_mode

            import torch
            # Tiny tensors gain nothing from intra-op threads, and on a busy machine OpenMP threads waiting for
            # each other made the run several times slower (docs/reproduce.md).
            torch.set_num_threads(1)
            tiny = tiny_mode.TinyProfile()
            if not args.dry_run:
                tiny_mode.build_miniature(root)
        steps = build_steps(plan, root, tiny, 'cpu' if args.tiny else args.device)
        if tiny and not args.dry_run:
            tiny_mode.write_official_weights(steps, root)
        gpus = args.gpus
        if gpus is None:
            import torch
            gpus = 0 if args.tiny else torch.cuda.device_count()
        runner = Runner(steps, root, args.stages, gpus, args.gpus_per_run, args.launcher == 'pytorch',
                        (index, count), not args.subprocess, args.dry_run, args.port)
        print(f'undersr reproduce {plan.name}: {plan.title}\nplan {plan.path}, root {osp.abspath(root)}, '
              f'{gpus} GPU(s)' + (', tiny' if tiny else '') + (', dry run' if args.dry_run else ''), flush=True)
        runner.run()
    except (PlanError, PrepareError, ReproduceError) as err:
        raise SystemExit(f'undersr reproduce: {err}')
    if not args.dry_run:
        print(f'undersr reproduce: done; table: {osp.join(root, plan_dir(plan), "table.md")}')
