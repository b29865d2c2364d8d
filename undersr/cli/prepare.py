"""``undersr prepare``: turn downloaded archives into the layouts our options read; ``--check`` a plan's inputs.

Example:
    .. code-block:: bash

        undersr prepare df2k --div2k ~/dl/DIV2K_train_HR.zip --flickr2k ~/dl/Flickr2K.tar
        undersr prepare tinyimagenet --src ~/dl/tiny-imagenet-200.zip --subset 45000 --seed 0
        undersr prepare --check table1

The layouts, the sources and the choices are in :mod:`undersr.prepare.datasets` and docs/reproduce.md.
"""
import argparse

from undersr.prepare import datasets
from undersr.prepare.sources import PrepareError, how_to_get


def build_parser():
    parser = argparse.ArgumentParser(
        prog='undersr prepare', description='Turn the official archives or folders you downloaded into the '
        'layouts under datasets/ that the options read. Nothing is downloaded.')
    parser.add_argument('--check', metavar='PLAN', help='list the inputs of a plan (table1, table2, colorshift or '
                        'a plan file), present or missing, with how to get each; exit 1 if one is missing')
    parser.add_argument('--root', default='.', help='root of the plan for --check (default: .)')
    sub = parser.add_subparsers(dest='dataset', metavar='DATASET')

    def add(name, text, sources, partial=True):
        p = sub.add_parser(name, help=text, description=f'{text}. From: {"; ".join(map(how_to_get, sources))}.')
        p.add_argument('--out', default='datasets', help='datasets folder (default: %(default)s)')
        if partial:
            p.add_argument('--partial', action='store_true', help='accept fewer images than the official count')
        return p

    p = add('df2k', 'DIV2K train HR + Flickr2K HR merged into DF2K/HR', ('div2k', 'flickr2k'))
    p.add_argument('--div2k', required=True, help='DIV2K_train_HR.zip or its folder')
    p.add_argument('--flickr2k', required=True, help='Flickr2K.tar or its folder')
    p = add('tinyimagenet', 'Tiny-ImageNet training images and a subset meta_info', ('tinyimagenet',))
    p.add_argument('--src', required=True, help='tiny-imagenet-200.zip or its folder')
    p.add_argument('--subset', type=int, default=45000, help='images in the subset (paper: ~45k; 0: none)')
    p.add_argument('--seed', type=int, default=0, help='seed of the subset (default: 0)')
    p = add('ntire2018', 'NTIRE 2018 Track 3 x4d test pairs', ('ntire2018_hr', 'ntire2018_lr'))
    p.add_argument('--hr', required=True, help='DIV2K_valid_HR.zip or its folder')
    p.add_argument('--lr', required=True, help='DIV2K_valid_LR_difficult.zip or its folder')
    for key, (folder, count) in datasets.BENCHMARKS.items():
        p = add(key, f'{folder} GTmod4 and LRbicx4 from its {count} HR images', (key,))
        p.add_argument('--src', required=True, help='folder or archive with the HR images')
    for key, text in (('realsr', 'RealSR V3 x4 test pairs: copy (with --src) and verify'),
                      ('drealsr', 'DRealSR x4 test pairs: copy (with --src) and verify'),
                      ('ntire2020', 'NTIRE 2020 Track 2 test input (LR only)')):
        p = add(key, text, (key,), partial=False)
        p.add_argument('--src', required=key == 'ntire2020', help='folder or archive')
    return parser


def prepare(args):
    """Runs one dataset's preparation; returns the paths it made."""
    key, out = args.dataset, args.out
    if key == 'df2k':
        made = [datasets.prepare_df2k(args.div2k, args.flickr2k, out, args.partial)]
        sources = {'div2k': args.div2k, 'flickr2k': args.flickr2k}
    elif key == 'tinyimagenet':
        made = list(datasets.prepare_tinyimagenet(args.src, out, args.subset, args.seed, args.partial))
        sources = {'src': args.src, 'subset': args.subset, 'seed': args.seed}
    elif key == 'ntire2018':
        made = list(datasets.prepare_ntire2018(args.hr, args.lr, out, args.partial))
        sources = {'hr': args.hr, 'lr': args.lr}
    elif key in datasets.BENCHMARKS:
        made = list(datasets.prepare_benchmark(key, args.src, out, args.partial))
        sources = {'src': args.src}
    else:
        made = [getattr(datasets, f'prepare_{key}')(args.src, out)]
        sources = {'src': args.src}
    made.append(datasets.write_record(out, key, sources=sources, made=[m for m in made if m]))
    return [m for m in made if m]


def check(plan_name, root):
    """Prints every input of a plan; returns the number of missing required ones."""
    from undersr.reproduce.inputs import check_inputs
    from undersr.reproduce.plan import load_plan
    from undersr.reproduce.runner import working_directory
    from undersr.reproduce.steps import build_steps

    plan = load_plan(plan_name)
    steps = build_steps(plan, root)
    with working_directory(root):
        findings = check_inputs(steps)
    missing = [f for f in findings if f.required and not f.present]
    print(f'Inputs of plan {plan.name} ({plan.path}) under {root}: {sum(f.present for f in findings)} of '
          f'{len(findings)} present, {len(missing)} required missing')
    for f in findings:
        state = 'present' if f.present else ('MISSING' if f.required else 'missing (optional)')
        print(f'  {state:<18} {f.path}\n  {"":<18} read by {f.key}' + ('' if f.present else f'\n  {"":<18} -> {f.how}'))
    return len(missing)


def main(argv=None):
    """Runs ``undersr prepare``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.check and not args.dataset:
        parser.error('give a DATASET to prepare, or --check PLAN')
    try:
        if args.check:
            if check(args.check, args.root):
                raise SystemExit(1)
            return
        for path in prepare(args):
            print(f'undersr prepare {args.dataset}: {path}')
    except (PrepareError, ValueError) as err:
        raise SystemExit(f'undersr prepare {args.dataset or "--check"}: {err}')
