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

CLEAN = 'clean'  # the class of images with no degradation but the bicubic downscaling

__all__ = ['CLEAN', 'class_histogram', 'entropy', 'normalized_entropy', 'diversity', 'score_labels', 'bicubic_lr',
           'delta_e_to_bicubic', 'summarize']


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


def diversity(labels, num_corruptions=15, clean_label=None):
    """The diversity scores of a set of images from their predicted classes (paper §4.3, with a clean class).

    Args:
        labels (array-like): (N,) int predicted class per image; corruption classes are ``0 .. num_corruptions - 1``.
        num_corruptions (int): C, the number of corruption classes (15).
        clean_label (int | None): The label that means clean (15 for :data:`undersr.analysis.classifier.CLASSES`);
            ``None`` for a 15-class prediction (the paper's).

    Returns:
        dict: ``n``; ``clean_share`` (fraction of images predicted clean, ``nan`` without a clean label);
        ``n_degraded`` (images not predicted clean); ``entropy`` and ``normalized_entropy`` (``/ log C``) of the
        corruption types of those images (``nan`` when there are none); ``class_counts`` ((C,) counts of the
        corruption types, then the clean count when there is a clean label).
    """
    labels = np.asarray(labels, np.int64).reshape(-1)
    size = num_corruptions + (clean_label is not None)
    counts = np.bincount(labels, minlength=size)[:size] if labels.size else np.zeros(size, np.int64)
    corruption_counts = counts[:num_corruptions]
    n_degraded = int(corruption_counts.sum())
    return {'n': int(labels.size),
            'clean_share': float(counts[clean_label] / labels.size) if clean_label is not None and labels.size
            else float('nan'),
            'n_degraded': n_degraded, 'entropy': entropy(corruption_counts),
            'normalized_entropy': entropy(corruption_counts, normalize=True), 'class_counts': counts.tolist()}


def score_labels(labels, corruption_labels, classes):
    """The diversity scores of a set of images from :func:`undersr.analysis.classifier.predict_labels`.

    Args:
        labels (array-like): (N,) indices into ``classes``.
        corruption_labels (array-like): (N,) indices into the 15 corruptions (clean masked out).
        classes (Sequence[str]): The classifier's classes: the corruptions, then (usually) :data:`CLEAN`.

    Returns:
        dict: :func:`undersr.analysis.metrics.diversity` of ``labels`` (clean share, entropy of the images not
        classified clean), plus ``paper_entropy`` and ``paper_normalized_entropy``: the paper's 15-class score
        (every image's most probable corruption).
    """
    clean = list(classes).index(CLEAN) if CLEAN in classes else None
    num_corruptions = len(classes) - (clean is not None)
    scores = diversity(labels, num_corruptions, clean)
    paper = diversity(corruption_labels, num_corruptions)
    scores.update(paper_entropy=paper['entropy'], paper_normalized_entropy=paper['normalized_entropy'])
    return scores


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
