"""``undersr analyze DATASET [DATASET ...] --out DIR``: ΔE and diversity of degraded datasets (paper §4.3).

See :mod:`undersr.analysis.report` for the inputs and the files written.

Example:
    .. code-block:: bash

        undersr analyze datasets/undersr/DF2K_VQVAE2_ep8 datasets/undersr/DF2K_MAE_ep8 --out results/analysis \\
            --classifier experiments/degradation_classifier.pth --max-images 500
"""
import argparse


def build_parser():
    parser = argparse.ArgumentParser(
        prog='undersr analyze',
        description='Colour shift (CIEDE2000 between bicubic and degraded LR) and degradation diversity (share of '
        'images classified clean, and entropy of the predicted ImageNet-C corruption types of the others) of degraded '
        'datasets, per source, with plots and image grids (paper §4.3).')
    parser.add_argument('datasets', nargs='+', metavar='DATASET',
                        help='output of `undersr generate` (folders or LMDBs with manifest.json), a folder with '
                        'gt/lq (hr/lr) sub-folders or LMDBs, or GT_PATH,LQ_PATH')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--classifier', help='checkpoint of `undersr train-degradation-classifier`; without it the '
                        'entropy is skipped')
    parser.add_argument('--paper-classes', action='store_true',
                        help="the paper's 15-class entropy: every image forced into one of the 15 corruptions (the "
                        'clean class masked out), no clean share; also reads 15-class checkpoints of older undersr')
    parser.add_argument('--max-images', type=int, help='at most N pairs per dataset (evenly spread)')
    parser.add_argument('--grid-samples', type=int, default=2, help='samples per source in the grids (default: 2)')
    parser.add_argument('--crop', type=int, default=32, help='LR crop side shown in the grids (default: 32)')
    parser.add_argument('--device', default='cpu', help='device of the classifier (default: cpu; auto: CUDA if any)')
    return parser


def main(argv=None):
    """Runs ``undersr analyze``; prints one line per source and the files written."""
    args = build_parser().parse_args(argv)
    if args.max_images is not None and args.max_images < 1:
        raise SystemExit('undersr analyze: --max-images must be at least 1')
    from undersr.analysis.report import analyze, describe_classifier
    from undersr.device import resolve_device
    device = resolve_device(args.device)
    try:
        report = analyze(args.datasets, args.out, classifier=args.classifier, max_images=args.max_images,
                         grid_samples=args.grid_samples, crop=args.crop, device=device,
                         paper_classes=args.paper_classes)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'undersr analyze: {err}')
    if report['classifier']:
        print(f'diversity by the {describe_classifier(report["classifier"])}')
    for name, s in report['by_source'].items():
        extra = ''
        if 'entropy' in s and args.paper_classes:
            extra = f', entropy {s["entropy"]:.3f} (normalised {s["normalized_entropy"]:.3f}, 15 classes)'
        elif 'entropy' in s:
            extra = (f', clean share {s["clean_share"]:.2f}, entropy {s["entropy"]:.3f} (normalised '
                     f'{s["normalized_entropy"]:.3f}) of the {s["n_degraded"]} not classified clean')
        print(f'{name}: {s["n"]} images, mean ΔE {s["delta_e_mean"]:.3f}{extra}')
    print(f'wrote {", ".join(report["files"])} to {args.out}')

