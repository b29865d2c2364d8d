"""``undersr train-degradation-classifier --out CKPT``: the corruption-type classifier of paper §4.3.

Trains :class:`undersr.analysis.classifier.DegradationClassifier` on patches of clean photos corrupted on the fly
with the 15 ImageNet-C corruptions at severities 1–5, or left clean (the 16th class), and prints its accuracy on
held-out image regions. Beside the checkpoint it writes ``<stem>.confusion.png`` (held-out confusion matrix),
``<stem>.per_class.csv`` (held-out accuracy per class) and ``<stem>.eval.json`` (all of it, with the accuracy per
severity and the validation of the diversity scores on held-out regions, :mod:`undersr.analysis.evaluation`).
Without ``--images`` it uses the training parts of the demo's training-side photos, shipped with scikit-image
(nothing is downloaded; the demo's held-aside photos stay unseen); a folder of your own HR photos (e.g.
``datasets/DIV2K/DIV2K_train_HR``) gives a stronger classifier. ``--arch resnet152`` trains the paper's ResNet-152
instead of the small CNN, optionally from a local torchvision ImageNet file (``--init``).

Example:
    .. code-block:: bash

        undersr train-degradation-classifier --out experiments/degradation_classifier.pth
        undersr analyze datasets/undersr/DF2K_VQVAE2_ep8 --classifier experiments/degradation_classifier.pth \\
            --out results/analysis
        # The paper's classifier: ResNet-152 on Tiny-ImageNet-C (built on the fly; 64-pixel images need --patch 16).
        undersr train-degradation-classifier --arch resnet152 --init resnet152-394f9c45.pth \\
            --images datasets/tiny-imagenet-200/train --patch 16 --train-per-class 2000 --steps 20000 --lr 1e-3 \\
            --device cuda --out experiments/degradation_classifier_resnet152.pth
"""
import argparse


def build_parser():
    parser = argparse.ArgumentParser(
        prog='undersr train-degradation-classifier',
        description='Train a CNN that predicts which of the 15 ImageNet-C corruptions (or none: clean) an image patch '
        'shows, on clean photos corrupted on the fly; prints the held-out accuracy and writes a confusion matrix, '
        'per-class accuracy and a validation of the diversity scores beside the checkpoint.')
    parser.add_argument('--images', help="folder of clean photos (default: the training parts of the demo's "
                        'training-side photos, shipped with scikit-image)')
    parser.add_argument('--out', required=True, help='checkpoint to write (.pth)')
    parser.add_argument('--steps', type=int, default=1500, help='training steps (default: %(default)s; '
                        'docs/analysis.md measures this default)')
    parser.add_argument('--patch', type=int, default=32, help='patch side in pixels (default: %(default)s)')
    parser.add_argument('--batch-size', type=int, default=64, help='patches per step (default: %(default)s)')
    parser.add_argument('--train-per-class', type=int, default=200,
                        help='corrupted training patches per class (default: %(default)s)')
    parser.add_argument('--holdout-per-class', type=int, default=40,
                        help='corrupted held-out patches per class (default: %(default)s)')
    parser.add_argument('--arch', default='small',
                        help="'small' (default: a 6-layer CNN that trains in minutes on a CPU) or a torchvision ResNet "
                        "(resnet18, resnet34, resnet50, resnet101, resnet152: the paper's, §4.3, meant for a GPU)")
    parser.add_argument('--init', metavar='FILE', help='a local torchvision ImageNet state dict of the same ResNet to '
                        'start from (e.g. resnet152-394f9c45.pth); never downloaded')
    parser.add_argument('--width', type=int, default=32, help="width of --arch small (default: %(default)s)")
    parser.add_argument('--lr', type=float, default=2e-3,
                        help='peak learning rate, cosine decay (default: %(default)s)')
    parser.add_argument('--device', default='auto', help="'auto' (CUDA when available, default), 'cpu', 'cuda'")
    parser.add_argument('--seed', type=int, default=0, help='seed (default: %(default)s)')
    parser.add_argument('--validation-images', type=int, default=64,
                        help='images per validation set (default: %(default)s)')
    return parser


def main(argv=None):
    """Runs the training and prints the held-out accuracy and the checkpoint path."""
    args = build_parser().parse_args(argv)
    for name in ('steps', 'patch', 'batch_size', 'train_per_class', 'holdout_per_class', 'width'):
        if getattr(args, name) < 1:
            raise SystemExit(f'undersr train-degradation-classifier: --{name.replace("_", "-")} must be at least 1')
    from undersr.analysis.classifier import train_degradation_classifier
    from undersr.analysis.evaluation import validate, write_classifier_report
    try:
        result = train_degradation_classifier(
            args.images, args.out, steps=args.steps, patch=args.patch, device=args.device, seed=args.seed,
            batch_size=args.batch_size, train_per_class=args.train_per_class,
            holdout_per_class=args.holdout_per_class, width=args.width, lr=args.lr, arch=args.arch, init=args.init)
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f'undersr train-degradation-classifier: {err}')
    result['validation'] = validate(result['model'], result['holdout_blocks'], args.validation_images, args.seed)
    files = write_classifier_report(result, args.out)
    worst = sorted(result['per_class_accuracy'].items(), key=lambda kv: kv[1])[:3]
    print(f'held-out accuracy {result["accuracy"]:.3f} (chance {result["chance"]:.3f}, training '
          f'{result["train_accuracy"]:.3f}) on {result["holdout_samples"]} patches of {result["holdout_regions"]} '
          f'held-out regions; hardest: {", ".join(f"{c} {a:.2f}" for c, a in worst)}')
    print('by severity: ' + ', '.join(f'{s} {a:.2f}' for s, a in result['accuracy_by_severity'].items()))
    rates = result['clean_threshold_rates']
    print(f'clean when P(clean) >= {result["clean_threshold"]:.3f} (held out: {rates["clean_recall"]:.2f} of the clean '
          f'patches, {rates["false_clean"]:.2f} of the corrupted ones)')
    for name, v in result['validation'].items():
        if isinstance(v, dict):
            print(f'validation, {name}: clean share {v["clean_share"]:.2f}, entropy {v["entropy"]:.3f} of '
                  f'{v["n_degraded"]}/{v["n"]} not clean (paper 15-class entropy {v["paper_entropy"]:.3f})')
    print(f'saved {args.out} ({result["steps"]} steps, {result["seconds"]:.0f} s) and {", ".join(files)}')
