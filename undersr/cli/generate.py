"""``undersr generate``: (HR, degraded LR) training pairs made offline with undertrained networks.

The command line of :mod:`undersr.generate`; the manual is docs/generate.md.

Example:
    .. code-block:: bash

        undersr generate --hr datasets/DF2K/HR --recon experiments/.../net_g_ep2.pth --out datasets/DF2K_under
        torchrun --nproc_per_node 4 -m undersr.generate --hr ... --recon a.pth b.pth --recon-weights 3 1 --out ...
"""
import argparse
import sys
from os import path as osp

from undersr.degrade import COLOR_CORRECTIONS
from undersr.generate.errors import GenerateError
from undersr.generate.runner import run
from undersr.generate.staging import FINAL_OUTPUTS, STAGING


def build_parser():
    """The argument parser of ``undersr generate``."""
    parser = argparse.ArgumentParser(
        prog='undersr generate',
        description='Make (HR, degraded LR) pairs: HR -> bicubic xscale -> undertrained reconstruction network. '
        'See docs/generate.md for the output layout.')
    parser.add_argument('--hr', required=True, help='HR images: folder tree, BasicSR LMDB or meta_info file')
    parser.add_argument('--hr-root', help='image root for a meta_info --hr (default: its folder)')
    parser.add_argument('--recon', required=True, nargs='+', action='extend', metavar='CKPT',
                        help='reconstruction checkpoint(s); repeatable')
    parser.add_argument('--recon-weights', nargs='+', type=float, metavar='W',
                        help='probability of each checkpoint (normalised; default uniform)')
    parser.add_argument('--scale', type=int, default=4, help='bicubic downscaling factor (default: %(default)s)')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--crop', type=int, help='HR crop size (e.g. 1024 as in the paper); default whole images')
    parser.add_argument('--crops-per-image', type=int, default=1, help='random crops per image (default: 1)')
    parser.add_argument('--color-correct', choices=COLOR_CORRECTIONS, default='none',
                        help="'none' (the paper's recipe, default) or 'lab-stats' (match the clean LR's Lab "
                             'mean/std, against the colour shift of paper §4.3)')
    parser.add_argument('--strength', type=float, metavar='S',
                        help='blend each sample with its clean LR, lq = clean + s * (recon - clean), s drawn '
                        'uniformly from [0, S] per sample (0 < S <= 1; default: the reconstruction itself)')
    parser.add_argument('--batch-size', type=int, default=8, help='samples per chunk and batch (default: 8)')
    parser.add_argument('--device', choices=('auto', 'cpu', 'cuda'), default='auto',
                        help='auto: CUDA when available (default)')
    parser.add_argument('--seed', type=int, default=0, help='seed of crops and sources (default: 0)')
    parser.add_argument('--format', choices=tuple(FINAL_OUTPUTS), default='lmdb', help='default: lmdb')
    parser.add_argument('--workers', type=int, default=2, help='decode threads (default: 2; 0: inline)')
    parser.add_argument('--delta-e-every', type=int, default=10, metavar='K',
                        help='CIEDE2000 on every K-th sample (default: 10; 0 disables)')
    parser.add_argument('--amp', choices=('none', 'auto', 'bf16', 'fp16'), default='none',
                        help='autocast of the networks (default: none, float32; auto: bf16 on CUDA if supported)')
    return parser


def parse_args(argv=None):
    """Parses and checks the arguments; argparse exits with a usage message on errors.

    Args:
        argv (list[str] | None): Arguments without the program name; default ``sys.argv[1:]``.

    Returns:
        argparse.Namespace: The arguments :func:`undersr.generate.run` takes.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.scale < 1:
        parser.error('--scale must be at least 1')
    if args.crop is not None and (args.crop < args.scale or args.crop % args.scale):
        parser.error(f'--crop {args.crop} must be a positive multiple of --scale {args.scale}')
    for name in ('crops_per_image', 'batch_size'):
        if getattr(args, name) < 1:
            parser.error(f'--{name.replace("_", "-")} must be at least 1')
    if args.workers < 0 or args.delta_e_every < 0:
        parser.error('--workers and --delta-e-every must not be negative')
    if args.strength is not None and not 0 < args.strength <= 1:
        parser.error(f'--strength must be in (0, 1], got {args.strength}')
    if args.recon_weights is not None and len(args.recon_weights) != len(args.recon):
        parser.error(f'--recon-weights needs one weight per checkpoint ({len(args.recon)}), '
                     f'got {len(args.recon_weights)}')
    return args


def main(argv=None):
    """Entry point of ``undersr generate`` and ``python -m undersr.generate``.

    Args:
        argv (list[str] | None): Arguments without the program name; default ``sys.argv[1:]``.

    Raises:
        SystemExit: With a one-line message (no traceback) for user errors, a full disk and Ctrl-C.
    """
    args = parse_args(argv)
    try:
        run(args)
    except GenerateError as err:
        raise SystemExit(f'undersr generate: error: {err}') from None
    except KeyboardInterrupt:
        print(f'undersr generate: interrupted. Finished chunks are kept in {osp.join(args.out, STAGING)}; rerun '
              'the same command to resume.', file=sys.stderr)
        raise SystemExit(130) from None
