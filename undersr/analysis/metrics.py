"""The two dataset measures of paper §4.3: diversity (entropy of corruption types) and colour shift (CIEDE2000 ΔE).

§4.3 of arXiv 2503.02767 explains why some undertrained reconstruction networks make better training data than
others with two measures of a degraded dataset:

* **Diversity**: a classifier trained on the 15 ImageNet-C corruptions assigns every degraded image a type; the
  entropy ``H = -Σ_c P(c) log P(c)`` of the distribution of assigned types over the dataset is high when the
  degradations are varied. We follow that reading: each image votes for its most probable type (argmax), the votes
  form a histogram, and its entropy (natural log) is reported raw and normalised by ``log(15)`` (1 = every type
  equally often, 0 = a single type). :func:`entropy` also accepts a plain histogram or probability vector.
* **Colour shift**: the mean CIEDE2000 colour difference ΔE between the clean bicubic LR (recomputed from the HR
  with :func:`undersr.resize.bicubic_downsample`) and the degraded LR (:func:`undersr.color.delta_e`).
"""
import math

from undersr.color import delta_e
from undersr.resize import bicubic_downsample

import numpy as np

__all__ = ['class_histogram', 'entropy', 'normalized_entropy', 'bicubic_lr', 'delta_e_to_bicubic', 'summarize']


def class_histogram(probs, num_classes=None):
    """Counts of the per-image predicted class (argmax), as in the paper's §4.3.

    Args:
        probs (array-like): (N, C) per-image class probabilities (or scores), or (N,) integer predictions.
        num_classes (int | None): C; required for integer predictions, else taken from ``probs``.

    Returns:
        ndarray: (C,) int64 counts summing to N.
    """
    probs = np.asarray(probs)
    if probs.ndim == 2:
        num_classes = probs.shape[1] if num_classes is None else num_classes
        labels = probs.argmax(axis=1)
    elif probs.ndim == 1 and np.issubdtype(probs.dtype, np.integer):
        if num_classes is None:
            raise ValueError('num_classes is needed for integer predictions')
        labels = probs
    else:
        raise ValueError(f'expected (N, C) probabilities or (N,) integer labels, got shape {probs.shape}')
    return np.bincount(labels, minlength=num_classes).astype(np.int64)


def entropy(probs_or_counts, normalize=False):
    """Shannon entropy ``H = -Σ_c P(c) log P(c)`` in nats of a class distribution (paper §4.3).

    Args:
        probs_or_counts (array-like): A (C,) histogram or probability vector (normalised here; zeros contribute
            0), or (N, C) per-image probabilities, which are first turned into the histogram of their argmax
            (:func:`class_histogram`).
        normalize (bool): Divide by ``log(C)``, giving a value in [0, 1].

    Returns:
        float: The entropy; ``nan`` for an empty distribution.
    """
    values = np.asarray(probs_or_counts, dtype=np.float64)
    if values.ndim == 2:
        values = class_histogram(values).astype(np.float64)
    if values.ndim != 1:
        raise ValueError(f'expected a (C,) distribution or (N, C) probabilities, got shape {values.shape}')
    if np.any(values < 0):
        raise ValueError('a distribution cannot have negative entries')
    total = values.sum()
    if total <= 0:
        return float('nan')
    p = values[values > 0] / total
    h = float(-(p * np.log(p)).sum()) + 0.0  # + 0.0 turns -0.0 into 0.0
    if normalize:
        return h / math.log(len(values)) if len(values) > 1 else 0.0
    return h


def normalized_entropy(probs_or_counts):
    """:func:`entropy` divided by ``log(C)``: 1 for a uniform distribution, 0 for a single class."""
    return entropy(probs_or_counts, normalize=True)


def bicubic_lr(hr, scale):
    """The clean bicubic LR of an HR image (MATLAB-compatible, :func:`undersr.resize.bicubic_downsample`).

    Args:
        hr (ndarray): (H, W, 3) RGB, uint8 or float in [0, 1]; cropped at the bottom/right to a multiple of
            ``scale`` first.
        scale (int): Downscaling factor.

    Returns:
        ndarray: (H // scale, W // scale, 3) float32 RGB in [0, 1].
    """
    hr = np.asarray(hr)
    hr = hr.astype(np.float32) / 255. if hr.dtype == np.uint8 else hr.astype(np.float32)
    h, w = hr.shape[:2]
    return bicubic_downsample(hr[:h - h % scale, :w - w % scale], scale)


def delta_e_to_bicubic(hr, lq, scale):
    """Mean CIEDE2000 ΔE between the bicubic LR of ``hr`` and the degraded ``lq`` (paper §4.3).

    Args:
        hr (ndarray): (H, W, 3) RGB HR, uint8 or float in [0, 1].
        lq (ndarray): (h, w, 3) RGB degraded LR, uint8 or float in [0, 1], h ≈ H / scale. If the sizes differ
            slightly (real benchmarks), both are cropped to the common top-left part.
        scale (int): The LR's downscaling factor.

    Returns:
        float: Mean ΔE over the pixels.
    """
    clean = bicubic_lr(hr, scale)
    lq = np.asarray(lq)
    lq = lq.astype(np.float32) / 255. if lq.dtype == np.uint8 else lq.astype(np.float32)
    h, w = min(clean.shape[0], lq.shape[0]), min(clean.shape[1], lq.shape[1])
    return float(delta_e(clean[:h, :w], np.clip(lq[:h, :w], 0, 1)))


def summarize(values):
    """Mean, standard deviation, median, min, max and count of a list of numbers (NaNs ignored).

    Returns:
        dict: Keys ``mean``, ``std``, ``median``, ``min``, ``max`` (``nan`` when empty) and ``n``.
    """
    arr = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=np.float64)
    if arr.size == 0:
        return {'mean': float('nan'), 'std': float('nan'), 'median': float('nan'), 'min': float('nan'),
                'max': float('nan'), 'n': 0}
    return {'mean': float(arr.mean()), 'std': float(arr.std()), 'median': float(np.median(arr)),
            'min': float(arr.min()), 'max': float(arr.max()), 'n': int(arr.size)}
