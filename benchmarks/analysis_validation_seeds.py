"""The validation of docs/analysis.md for the test suite's small classifier, over training seeds.

    python benchmarks/analysis_validation_seeds.py [--seeds 0 1 2] [--out results/analysis_validation_seeds.json]

Trains :data:`undersr.analysis.evaluation.QUICK_CLASSIFIER` (seconds on a CPU) on the four photos of
``tests/test_analysis.py`` once per seed, runs :func:`undersr.analysis.evaluation.validate` on its held-out regions
(60 images per set, as the test does) and writes the scores; the thresholds of
``test_validation_scores_measure_what_they_claim`` leave a margin below the worst seed.
"""
import argparse
import json
import os

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.analysis.classifier import train_degradation_classifier
from undersr.analysis.evaluation import QUICK_CLASSIFIER, QUICK_PHOTOS, validate
from undersr.analysis.report import json_safe
from undersr.sample_data import load


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--out', default='results/analysis_validation_seeds.json')
    args = parser.parse_args(argv)
    photos, runs = [load(n) for n in QUICK_PHOTOS], {}
    for seed in args.seeds:
        result = train_degradation_classifier(photos, None, device='cpu', seed=seed, progress=False,
                                              **QUICK_CLASSIFIER)
        runs[seed] = {'accuracy': result['accuracy'], 'clean_threshold': result['clean_threshold'],
                      'validation': validate(result['model'], result['holdout_blocks'], count=60, seed=0)}
        scores = runs[seed]['validation']
        print(f'seed {seed}: held-out accuracy {result["accuracy"]:.3f}, clean threshold '
              f'{result["clean_threshold"]:.3f}; ' + '; '.join(
            f'{name}: clean share {s["clean_share"]:.2f}, H {s["entropy"]:.3f} ({s["normalized_entropy"]:.3f}), '
            f'paper H {s["paper_entropy"]:.3f}' for name, s in scores.items() if isinstance(s, dict)))
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(json_safe({'settings': QUICK_CLASSIFIER, 'photos': QUICK_PHOTOS, 'runs': runs}), f, indent=1)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
