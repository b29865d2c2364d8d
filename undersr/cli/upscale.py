"""``undersr upscale INPUT... --model CKPT [--model CKPT ...] --out DIR [--compare]``: SR for real photos.

Exit status: 0 when every photo was upscaled (or already was), 3 when some were skipped (each is named on
standard error), 1 with a message when a model or the inputs cannot be used. See :mod:`undersr.upscale` and
``docs/upscale.md``.

Example:
    .. code-block:: bash

        undersr upscale photos/ --model demo_out/models/sr_finetuned.pth --out up/
        undersr upscale photos/ --model a.pth --model b.pth --opt options/test/test_edsr_realsr.yml --out up/ \\
            --compare --tile 256 --half
"""
import argparse

SKIPPED_EXIT_STATUS = 3


def build_parser():
    parser = argparse.ArgumentParser(
        prog='undersr upscale',
        description='Super-resolve photos (files or folders, recursively) with one or more SR models, keeping '
        'relative paths and each image\'s mode (grey, alpha, 16 bit). Resumes by skipping finished outputs. '
        f'Exit status {SKIPPED_EXIT_STATUS} when unreadable photos were skipped.')
    parser.add_argument('inputs', nargs='+', metavar='INPUT', help='image files and folders')
    parser.add_argument('--model', action='append', required=True, metavar='CKPT',
                        help='SR checkpoint (repeat for several): ours with an option file (--opt, <stem>.yml '
                        'beside it, or the BasicSR experiment folder\'s), or a release that spandrel recognises')
    parser.add_argument('--opt', action='append', metavar='OPTION.yml',
                        help='BasicSR option file whose network_g describes the model: once for all models, or '
                        'once per --model in order (auto: beside the checkpoint, or spandrel)')
    parser.add_argument('--label', action='append', metavar='NAME',
                        help='name of each model (once per --model; default: from the file name)')
    parser.add_argument('--out', required=True, help='output folder (OUT/<label>/ per model when several)')
    parser.add_argument('--compare', action='store_true',
                        help='also bicubic, and OUT/compare/index.html + grid.png: the same crops side by side')
    parser.add_argument('--scale', type=float,
                        help='output size relative to the input (default: the model\'s); other than the model\'s, '
                        'its output is resized with Lanczos')
    parser.add_argument('--tile', type=int, default=0, help='tile side in input pixels; 0: whole images (default)')
    parser.add_argument('--tile-pad', type=int, default=10, help='context around each tile (default: 10)')
    parser.add_argument('--pre-pad', type=int, default=10,
                        help='reflect padding at the bottom and right of each image (default: 10)')
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument('--half', action='store_const', dest='precision', const='fp16', default='fp32',
                           help='run in float16 (GPUs)')
    precision.add_argument('--bf16', action='store_const', dest='precision', const='bf16', help='run in bfloat16')
    parser.add_argument('--device', default='auto', help='auto (CUDA when there is a GPU), cpu, cuda, cuda:1, ...')
    parser.add_argument('--alpha', choices=('model', 'bicubic'), default='model',
                        help='upscale an alpha channel with the model (default, as Real-ESRGAN) or bicubic')
    parser.add_argument('--ext', choices=('auto', 'png'), default='auto',
                        help='output format: that of the input (default) or png')
    parser.add_argument('--crops', type=int, default=2, help='crops per photo with --compare (default: 2)')
    parser.add_argument('--crop-size', type=int, default=192,
                        help='crop side in output pixels with --compare (default: 192)')
    return parser


def main(argv=None):
    """Runs ``undersr upscale``; exits with status 3 if photos were skipped."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.label and len(args.label) != len(args.model):
        parser.error(f'--label needs one name per --model ({len(args.model)}), got {len(args.label)}')
    if args.scale is not None and args.scale <= 0 or args.crops < 1 or args.crop_size < 1:
        parser.error('--scale, --crops and --crop-size must be positive')
    from undersr.upscale import upscale
    try:
        result = upscale(args.inputs, args.model, args.out, labels=args.label, opts=args.opt, compare=args.compare,
                         scale=args.scale, alpha=args.alpha, ext=args.ext, device=args.device,
                         precision=args.precision, tile_size=args.tile, tile_pad=args.tile_pad, pre_pad=args.pre_pad,
                         crops=args.crops, crop_size=args.crop_size)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'undersr upscale: {err}')
    print(f'wrote {result.written} images, kept {result.existing} from an earlier run, skipped {len(result.bad)}; '
          f'outputs in {args.out}')
    if result.page:
        print(f'comparison: {result.page}')
    if result.bad:
        print(f'skipped {len(result.bad)} unreadable photos:\n' + '\n'.join(f'  {p}: {r}' for p, r in result.bad))
        raise SystemExit(SKIPPED_EXIT_STATUS)
