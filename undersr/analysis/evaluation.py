"""How far the degradation classifier's numbers can be trusted: confusion matrix, per-class accuracy, validation.

:func:`write_classifier_report` writes, beside a checkpoint of ``undersr train-degradation-classifier``:

* ``<stem>.confusion.png``: the held-out confusion matrix (rows: true class, normalised; columns: predicted);
* ``<stem>.per_class.csv``: held-out accuracy and patch count per class;
* ``<stem>.eval.json``: accuracy, per-class and per-severity accuracy, the confusion matrix and the validation.

:func:`validate` checks that the diversity scores of :mod:`undersr.analysis.metrics` measure what they claim, on
sets made from the held-out regions of the training photos (so the classifier never saw them), each region
bicubically downscaled ×4 like an LR image:

* ``clean``: the bicubic LR only; should be classified clean (clean share near 1);
* ``one corruption``: the bicubic LR with :data:`VALIDATION_CORRUPTION` at random severities; low entropy;
* ``mixed``: the bicubic LR with each of the 15 corruptions in turn (random severities); high entropy;
* ``realesrgan``: Real-ESRGAN's second-order degradation (:func:`realesrgan_degrade`) of the region; varied
  blur, resizing, noise and JPEG, so a higher entropy than the one-corruption set.

The same four sets of whole photos, as folders ``undersr analyze`` reads (:func:`write_validation_sets`)::

    python -m undersr.analysis.evaluation HR_FOLDER OUT_DIR [--seed N]
"""
import csv
import json
import math
import os
import random

from undersr.analysis.classifier import predict_labels
from undersr.analysis.corruptions import CORRUPTIONS, corrupt
from undersr.analysis.metrics import score_labels
from undersr.analysis.report import json_safe
from undersr.image_io import to_uint8
from undersr.resize import bicubic_downsample
from undersr.visualize import new_figure

import cv2
import numpy as np

__all__ = ['write_classifier_report', 'plot_confusion', 'validate', 'validation_sets', 'degrade_sets',
           'write_validation_sets', 'realesrgan_degrade', 'QUICK_CLASSIFIER', 'QUICK_PHOTOS',
           'VALIDATION_CORRUPTION', 'VALIDATION_SCALE']

# The corruption of the one-corruption set: the most reliably recognised type on held-out patches (chosen on the
# test suite's small classifier; the classifier of docs/analysis.md recognises it best too, 0.97), so that the set's
# entropy reflects the metric rather than the classifier's confusions (the three noises are often confused).
VALIDATION_CORRUPTION = 'fog'
VALIDATION_SCALE = 4  # the regions are downscaled like the paper's ×4 LR
# A classifier that trains in seconds on a CPU, on 16-pixel patches of four photos: the test suite's (module
# fixture of tests/test_analysis.py) and benchmarks/analysis_validation_seeds.py's. Far weaker than the default.
QUICK_CLASSIFIER = {'steps': 300, 'patch': 16, 'batch_size': 64, 'train_per_class': 40, 'holdout_per_class': 10,
                    'width': 16, 'lr': 3e-3}
QUICK_PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')

# Real-ESRGAN's degradation settings (options/train_realesrnet_x4plus.yml of xinntao/Real-ESRGAN), per stage.
_KERNELS = (['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso'],
            [0.45, 0.25, 0.12, 0.03, 0.12, 0.03])
_REALESRGAN_STAGES = (
    {'blur_prob': 1.0, 'blur_sigma': (0.2, 3), 'resize_prob': (0.2, 0.7, 0.1), 'resize_range': (0.15, 1.5),
     'noise_range': (1, 30), 'poisson_scale_range': (0.05, 3), 'jpeg_range': (30, 95)},
    {'blur_prob': 0.8, 'blur_sigma': (0.2, 1.5), 'resize_prob': (0.3, 0.4, 0.3), 'resize_range': (0.3, 1.2),
     'noise_range': (1, 25), 'poisson_scale_range': (0.05, 2.5), 'jpeg_range': (30, 95)})


def realesrgan_degrade(hr, seed, scale=VALIDATION_SCALE):
    """Real-ESRGAN's second-order degradation (Wang et al., ICCVW 2021) of an HR image, with BasicSR's functions.

    Two stages of blur (BasicSR's mixed Gaussian / generalised / plateau kernels of size 7–21), random resize
    (up, down or kept), Gaussian or Poisson noise (colour or grey) and JPEG, with the settings of Real-ESRGAN's
    training options, then a resize to ``1 / scale`` of the input and a last JPEG. Left out: the sinc filters
    (``sinc_prob``) and the random order of the final JPEG and sinc.

    Args:
        hr (ndarray): (H, W, 3) uint8 RGB.
        seed (int): Seeds all choices (BasicSR draws from the global generators of NumPy and of ``random``; their
            states are restored).
        scale (int): Downscaling factor of the output.

    Returns:
        ndarray: (H // scale, W // scale, 3) uint8 RGB.
    """
    from basicsr.data import degradations as bsr

    states = np.random.get_state(), random.getstate()
    np.random.seed(seed)
    random.seed(seed)
    try:
        x = hr.astype(np.float32) / 255.
        h, w = x.shape[:2]
        for stage in _REALESRGAN_STAGES:
            if np.random.uniform() < stage['blur_prob']:
                size = int(np.random.choice(range(7, 22, 2)))
                kernel = bsr.random_mixed_kernels(*_KERNELS, size, stage['blur_sigma'], stage['blur_sigma'],
                                                  [-math.pi, math.pi], (0.5, 4), (1, 2))
                x = cv2.filter2D(x, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)
            mode = np.random.choice(['up', 'down', 'keep'], p=stage['resize_prob'])
            factor = {'up': np.random.uniform(1, stage['resize_range'][1]),
                      'down': np.random.uniform(stage['resize_range'][0], 1), 'keep': 1.0}[mode]
            x = cv2.resize(x, (max(1, int(x.shape[1] * factor)), max(1, int(x.shape[0] * factor))),
                           interpolation=int(np.random.choice([cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC])))
            if np.random.uniform() < 0.5:
                x = bsr.random_add_gaussian_noise(x, stage['noise_range'], gray_prob=0.4)
            else:
                x = bsr.random_add_poisson_noise(x, stage['poisson_scale_range'], gray_prob=0.4)
            x = _jpeg(x, stage['jpeg_range'])
        x = cv2.resize(x, (w // scale, h // scale),
                       interpolation=int(np.random.choice([cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC])))
        x = _jpeg(x, (30, 95))
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])
    return to_uint8(x)


def _jpeg(rgb, quality_range):
    """JPEG round trip of a float RGB image at a random quality in ``quality_range`` (Real-ESRGAN's)."""
    quality = int(np.random.uniform(*quality_range))
    ok, data = cv2.imencode('.jpg', to_uint8(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('OpenCV could not encode a JPEG')
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.


def degrade_sets(hr_images, seed=0):
    """The four validation sets (module docstring) of HR images.

    Args:
        hr_images (list[ndarray]): (H, W, 3) uint8 RGB, H and W divisible by :data:`VALIDATION_SCALE`.
        seed (int): Seeds the corruptions, severities and Real-ESRGAN's choices.

    Returns:
        dict[str, list[ndarray]]: Set name → (H / 4, W / 4, 3) uint8 RGB LR images, one per HR image.
    """
    rng = np.random.default_rng(seed)
    lr = [bicubic_downsample(np.ascontiguousarray(hr), VALIDATION_SCALE) for hr in hr_images]
    return {
        'clean': lr,
        'one corruption': [corrupt(x, VALIDATION_CORRUPTION, int(rng.integers(1, 6)), rng) for x in lr],
        'mixed': [corrupt(x, CORRUPTIONS[i % len(CORRUPTIONS)], int(rng.integers(1, 6)), rng)
                  for i, x in enumerate(lr)],
        'realesrgan': [realesrgan_degrade(hr, int(rng.integers(2 ** 31))) for hr in hr_images]}


def validation_sets(blocks, count=64, seed=0):
    """:func:`degrade_sets` of ``count`` views of HR regions (reused in turn, flipped and rotated differently).

    Args:
        blocks (list[ndarray]): (S, S, 3) uint8 RGB regions, S divisible by :data:`VALIDATION_SCALE`.
        count (int): Images per set.
        seed (int): Seed of :func:`degrade_sets`.

    Returns:
        dict[str, list[ndarray]]: Set name → (S / 4, S / 4, 3) uint8 RGB images.
    """
    views = []
    for i in range(count):
        block, turn = blocks[i % len(blocks)], i // len(blocks)
        views.append(np.ascontiguousarray(np.rot90(block[:, ::-1] if turn % 8 >= 4 else block, turn % 4)))
    return degrade_sets(views, seed)


def write_validation_sets(hr_folder, out_dir, seed=0):
    """Writes :func:`degrade_sets` of a folder of HR photos as paired folders ``OUT/<set>/gt`` and ``OUT/<set>/lq``
    that ``undersr analyze`` reads (set names with ``_`` for spaces).

    Args:
        hr_folder (str): HR photos (cropped at the bottom/right to a multiple of :data:`VALIDATION_SCALE`).
        out_dir (str): Output folder.
        seed (int): Seed of :func:`degrade_sets`.

    Returns:
        list[str]: The set folders written.
    """
    from undersr.analysis.classifier import load_clean_images
    from undersr.visualize import save_image

    photos, names = load_clean_images(hr_folder)
    photos = [p[:p.shape[0] - p.shape[0] % VALIDATION_SCALE, :p.shape[1] - p.shape[1] % VALIDATION_SCALE]
              for p in photos]
    folders = []
    for set_name, images in degrade_sets(photos, seed).items():
        folder = os.path.join(out_dir, set_name.replace(' ', '_'))
        for name, hr, lq in zip(names, photos, images):
            stem = os.path.splitext(name)[0].replace(os.sep, '_')
            save_image(os.path.join(folder, 'gt', f'{stem}.png'), np.ascontiguousarray(hr[..., ::-1]))
            save_image(os.path.join(folder, 'lq', f'{stem}.png'), np.ascontiguousarray(lq[..., ::-1]))
        folders.append(folder)
    return folders


def validate(model, blocks, count=64, seed=0):
    """Diversity scores of the validation sets (module docstring).

    Args:
        model (DegradationClassifier): With ``classes`` and ``patch``.
        blocks (list[ndarray]): Held-out HR regions, see :func:`validation_sets`.
        count (int): Images per set.
        seed (int): Seed of :func:`validation_sets`.

    Returns:
        dict: Set name → :func:`undersr.analysis.metrics.score_labels` scores, and ``corruption``:
        :data:`VALIDATION_CORRUPTION`.
    """
    results = {'corruption': VALIDATION_CORRUPTION}
    for name, images in validation_sets(blocks, count, seed).items():
        labels, corruption_labels, _ = predict_labels(model, images)
        results[name] = score_labels(labels, corruption_labels, model.classes)
    return results


def plot_confusion(confusion, classes, path, title):
    """Draws a confusion matrix (rows true, columns predicted), each row normalised to sum to 1.

    Args:
        confusion (array-like): (K, K) counts.
        classes (Sequence[str]): K class names.
        path (str): PNG to write.
        title (str): Figure title.
    """
    counts = np.asarray(confusion, np.float64)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = new_figure(8, 7)
    ax = fig.subplots()
    image = ax.imshow(rates, cmap='Blues', vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            if rates[i, j] >= 0.05:
                ax.text(j, i, f'{rates[i, j]:.2f}'.lstrip('0'), ha='center', va='center', fontsize=6,
                        color='white' if rates[i, j] > 0.6 else 'black')
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=60, ha='right', fontsize=7)
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=7)
    ax.set_xlabel('predicted')
    ax.set_ylabel('true')
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label='share of the true class')
    fig.tight_layout()
    fig.savefig(path)


def write_classifier_report(result, out_path):
    """Writes the confusion matrix, per-class accuracy and evaluation beside a classifier checkpoint.

    Args:
        result (dict): From :func:`undersr.analysis.classifier.train_degradation_classifier`, optionally with
            ``validation`` from :func:`validate`.
        out_path (str): The checkpoint path; the files are ``<stem>.confusion.png``, ``<stem>.per_class.csv`` and
            ``<stem>.eval.json``.

    Returns:
        list[str]: The files written.
    """
    stem = os.path.splitext(out_path)[0]
    files = [f'{stem}.confusion.png', f'{stem}.per_class.csv', f'{stem}.eval.json']
    plot_confusion(result['confusion'], result['classes'], files[0],
                   f'{os.path.basename(out_path)}: held-out accuracy {result["accuracy"]:.3f} '
                   f'({result["holdout_samples"]} patches, chance {result["chance"]:.3f})')
    confusion = np.asarray(result['confusion'])
    with open(files[1], 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['class', 'holdout_accuracy', 'holdout_patches', 'most_confused_with'])
        for i, name in enumerate(result['classes']):
            row = confusion[i].copy()
            row[i] = -1
            writer.writerow([name, f'{result["per_class_accuracy"][name]:.4f}', int(confusion[i].sum()),
                             result['classes'][int(row.argmax())] if row.max() > 0 else ''])
    keys = ('classes', 'accuracy', 'chance', 'train_accuracy', 'per_class_accuracy', 'accuracy_by_severity',
            'confusion', 'validation', 'train_samples', 'holdout_samples', 'train_cells', 'holdout_cells',
            'holdout_regions', 'clean_threshold', 'clean_threshold_rates', 'steps', 'patch', 'network', 'init', 'width',
            'seed', 'sources', 'seconds')
    with open(files[2], 'w') as f:
        json.dump(json_safe({'checkpoint': out_path, **{k: result[k] for k in keys if k in result}}), f, indent=1)
    return files


def main(argv=None):
    """``python -m undersr.analysis.evaluation HR_FOLDER OUT_DIR``: writes the validation sets of HR photos."""
    import argparse
    parser = argparse.ArgumentParser(description='Write the validation sets of docs/analysis.md (clean bicubic LR, '
                                     'one corruption, mixed corruptions, Real-ESRGAN) of HR photos as paired '
                                     'folders OUT_DIR/<set>/{gt,lq} for `undersr analyze`.')
    parser.add_argument('hr_folder')
    parser.add_argument('out_dir')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args(argv)
    print('\n'.join(write_validation_sets(args.hr_folder, args.out_dir, args.seed)))


if __name__ == '__main__':
    main()
