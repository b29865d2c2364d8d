"""``undersr compare RESULT... --out DIR``: one table of several test runs, like the paper's Tables 1–2.

The inputs, the table and the files written are described in :mod:`undersr.analysis.compare`.
"""
import argparse
from os import path as osp

from undersr.analysis.compare import (
    build_table,
    checkpoint_label,
    find_test_log,
    parse_test_log,
    run_benchmark,
    to_markdown,
    write_outputs,
)


def build_parser():
    parser = argparse.ArgumentParser(
        prog='undersr compare',
        description='Tabulate BasicSR test results of several models (best in bold, differences from a baseline), '
        'like Tables 1-2 of the paper. Writes OUT/compare.md and OUT/compare.csv.')
    parser.add_argument('results', nargs='*', metavar='RESULT',
                        help='BasicSR result folders (results/<name>/ with test_<name>_*.log) or log files')
    parser.add_argument('--checkpoints', nargs='+', default=[], metavar='CKPT',
                        help='weights to test with --benchmark (after the RESULT folders)')
    parser.add_argument('--benchmark', metavar='OPTION.yml', help='test option file to run each checkpoint with')
    parser.add_argument('--labels', nargs='+', help='row labels, one per RESULT and CKPT, in that order '
                        '(default: folder or experiment names)')
    parser.add_argument('--baseline', metavar='NAME', help='label of the baseline row (e.g. "w/o fine-tune")')
    parser.add_argument('--sort-by', metavar='METRIC', help='metric or column title to rank by (default: first)')
    parser.add_argument('--lower-better', nargs='+', default=[], metavar='METRIC',
                        help='further metric names where lower is better (PSNR/SSIM/LPIPS/NIQE etc. are known)')
    parser.add_argument('--out', required=True, help='output folder')
    return parser


def main(argv=None):
    """Runs ``undersr compare``; prints the Markdown table."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.results and not args.checkpoints:
        parser.error('give RESULT folders and/or --checkpoints with --benchmark')
    if args.checkpoints and not args.benchmark:
        parser.error('--checkpoints needs --benchmark OPTION.yml')
    inputs = len(args.results) + len(args.checkpoints)
    if args.labels and len(args.labels) != inputs:
        parser.error(f'--labels needs {inputs} names (one per RESULT and CKPT), got {len(args.labels)}')
    labels = args.labels or ([osp.basename(osp.normpath(r)) if osp.isdir(r) else osp.splitext(osp.basename(r))[0]
                              for r in args.results] + [checkpoint_label(c) for c in args.checkpoints])
    try:
        folders = list(args.results)
        if args.checkpoints:
            folders += run_benchmark(args.checkpoints, args.benchmark, labels[len(args.results):],
                                     osp.join(args.out, 'options'))
        runs, sources = [], {}
        for label, folder in zip(labels, folders):
            log = find_test_log(folder)
            metrics = parse_test_log(log)
            if not metrics:
                raise ValueError(f'{log} has no metric lines (`# psnr: ...`); did the test run finish?')
            runs.append((label, metrics))
            sources[label] = log
        table = build_table(runs, args.baseline, args.sort_by, args.lower_better)
        md_path, csv_path = write_outputs(table, args.out, sources)
    except (FileNotFoundError, ValueError, RuntimeError) as err:
        raise SystemExit(f'undersr compare: {err}')
    print(to_markdown(table))
    print(f'wrote {md_path} and {csv_path}')

