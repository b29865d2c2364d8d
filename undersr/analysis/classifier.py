"""A small CNN that tells which ImageNet-C corruption an image patch shows, or that it shows none (paper §4.3).

The paper measures how diverse the degradations of a dataset are by classifying each degraded image into one of
the 15 ImageNet-C corruption types and taking the entropy of the predicted types (:mod:`undersr.analysis.metrics`).
A classifier that must pick one of 15 corruptions puts an undegraded image into a near-random one, so a set of
clean images would look maximally "diverse". We therefore add a 16th class, ``clean`` (the photo with no
corruption: what a bicubic LR looks like), and :mod:`undersr.analysis.metrics` reports the share of images
classified clean and the entropy over the 15 corruptions of the others.

The network is :class:`DegradationClassifier`, small enough to train in minutes on a CPU, or the paper's ResNet-152
(any torchvision ResNet, :mod:`undersr.analysis.resnet`). This module trains it on the fly from clean photos:
patches are cut from the images, corrupted with a random type at a random ImageNet-C severity 1–5
(:mod:`undersr.analysis.corruptions`) or left clean, and learnt. The patches come from the photos at full size and
bicubically downscaled by 2 and 4 (:data:`PYRAMID`), so every class is seen on the pixel statistics of bicubic LR
images too. By default the clean photos are the training parts of the demo's training-side photos, shipped with
scikit-image (:func:`load_clean_images`), so nothing is downloaded; a folder of your own photos (e.g. DIV2K, or the
paper's Tiny-ImageNet, whose 64-pixel images need ``patch=16``: a region is ``4 · patch`` pixels) gives a stronger
classifier.

Held-out split: every image is cut into blocks of ``4 · patch`` pixels; a fixed, seeded fraction of the blocks is
held out (:func:`split_blocks`), and each block gives its ``patch`` cells at every pyramid level (nearly flat cells
are dropped, :func:`pyramid_cells`). Training
and held-out patches therefore never show the same part of a photo, and the reported accuracy is measured on
regions the network never saw (with fresh corruptions).

Checkpoints are self-describing: ``classes`` (:data:`CLASSES`; an older checkpoint has the 15 corruptions only),
``arch`` (the network's ``type`` and constructor options, :func:`build_classifier`), ``patch``, ``accuracy`` (held
out), ``per_class_accuracy``, ``confusion`` and the training settings; :func:`load_degradation_classifier` needs
only the file.
"""
import math
import os
import time

from undersr.analysis.corruptions import CORRUPTIONS, corrupt
from undersr.analysis.metrics import CLEAN
from undersr.analysis.resnet import DEPTHS, ResNetClassifier, load_imagenet_init
from undersr.device import resolve_device
from undersr.image_io import read_rgb, to_uint8
from undersr.progress import progress as progress_bar
from undersr.resize import bicubic_downsample

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ['DegradationClassifier', 'build_classifier', 'train_degradation_classifier', 'load_degradation_classifier',
           'predict_proba', 'predict_labels', 'youden_threshold', 'ARCHS', 'CHECKPOINT_KIND', 'CLEAN', 'CLASSES',
           'PYRAMID']

CHECKPOINT_KIND = 'undersr-degradation-classifier'
CLASSES = CORRUPTIONS + (CLEAN,)  # the 15 corruptions keep their indices; clean is the last class
CLEAN_WEIGHT = 3  # see train_degradation_classifier
PYRAMID = (1, 2, 4)  # bicubic downscaling factors of the photos that the training and held-out cells come from
ARCHS = ('small',) + DEPTHS  # the networks train_degradation_classifier builds: ours, or torchvision's ResNets


class DegradationClassifier(nn.Module):
    """Three stages of two 3×3 convolutions (BatchNorm, ReLU; stride 2 between stages), then mean and standard
    deviation pooling (global statistics matter for noise, contrast and colour corruptions) and a linear layer.

    Args:
        num_classes (int): Output classes (16: the 15 ImageNet-C types and clean).
        width (int): Channels of the first stage (doubled per stage).

    Input (N, 3, P, P) RGB in [0, 1], any P ≥ 4; output logits (N, num_classes).
    """

    def __init__(self, num_classes=len(CLASSES), width=32):
        super().__init__()
        self.num_classes = num_classes
        layers, in_ch = [], 3
        for stage, out_ch in enumerate((width, 2 * width, 4 * width)):
            for i in range(2):
                stride = 2 if stage > 0 and i == 0 else 1
                layers += [nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.BatchNorm2d(out_ch),
                           nn.ReLU(inplace=True)]
                in_ch = out_ch
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(2 * in_ch, num_classes)

    def forward(self, x):
        f = self.features(x - 0.5)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.flatten(2).std(dim=2)], dim=1)
        return self.head(pooled)


def build_classifier(arch):
    """The network a checkpoint's ``arch`` describes.

    Args:
        arch (dict): Constructor options plus ``type``: ``'DegradationClassifier'`` (the default: checkpoints of
            undersr before the ResNet have no ``type``) or ``'ResNetClassifier'``
            (:class:`undersr.analysis.resnet.ResNetClassifier`).

    Returns:
        nn.Module: Untrained, with a ``num_classes`` attribute.

    Raises:
        ValueError: an unknown ``type``.
    """
    options = dict(arch)
    kind = options.pop('type', 'DegradationClassifier')
    networks = {'DegradationClassifier': DegradationClassifier, 'ResNetClassifier': ResNetClassifier}
    if kind not in networks:
        raise ValueError(f'unknown classifier type {kind!r}; undersr builds {", ".join(networks)}')
    return networks[kind](**options)


def load_clean_images(images=None):
    """The clean RGB photos to corrupt.

    Args:
        images (None | str | Sequence[str | ndarray]): ``None``: the training parts of the demo's training-side
            photos (:data:`undersr.demo.photos.TRAIN_PHOTOS`, :func:`undersr.demo.photos.split_train_val`: 16
            shipped photos, from everyday scenes to textures, text, microscopy and astronomy; the demo's
            held-aside photos and validation parts stay unseen); a folder: every image under it; or a list of paths
            and/or (H, W, 3) uint8 RGB arrays.

    Returns:
        tuple[list[ndarray], list[str]]: (H, W, 3) uint8 RGB images and their names.
    """
    from undersr.data.image_source import list_folder
    from undersr.demo.photos import TRAIN_PHOTOS, load_photo, split_train_val

    if images is None:
        return [split_train_val(load_photo(n), max(PYRAMID))[0] for n in TRAIN_PHOTOS], list(TRAIN_PHOTOS)
    if isinstance(images, (str, os.PathLike)):
        if not os.path.isdir(images):
            raise FileNotFoundError(f'no such folder of images: {images}')
        rel = list_folder(images)
        if not rel:
            raise FileNotFoundError(f'no images found under {images}')
        return [read_rgb(os.path.join(images, r)) for r in rel], rel
    arrays, names = [], []
    for i, item in enumerate(images):
        if isinstance(item, np.ndarray):
            arrays.append(item if item.dtype == np.uint8 else to_uint8(item))
            names.append(f'array{i}')
        else:
            arrays.append(read_rgb(item))
            names.append(str(item))
    return arrays, names


def split_blocks(images, patch, holdout, seed):
    """Cuts the images into non-overlapping blocks of ``max(PYRAMID) · patch`` pixels and splits them.

    Args:
        images (list[ndarray]): (H, W, 3) uint8 RGB.
        patch (int): Cell side (a block holds ``max(PYRAMID)²`` cells at full size).
        holdout (float): Fraction of blocks held out (at least one per split).
        seed (int): Seed of the split.

    Returns:
        tuple[list, list]: Training and held-out blocks, (S, S, 3) uint8 arrays, S = max(PYRAMID) · patch.

    Raises:
        ValueError: fewer than two blocks.
    """
    side = patch * max(PYRAMID)
    blocks = [np.ascontiguousarray(image[top:top + side, left:left + side]) for image in images
              for top in range(0, image.shape[0] - side + 1, side)
              for left in range(0, image.shape[1] - side + 1, side)]
    if len(blocks) < 2:
        raise ValueError(f'need at least 2 regions of {side}×{side} pixels to split, found {len(blocks)}; use larger '
                         'or more images, or a smaller patch')
    order = np.random.default_rng(seed).permutation(len(blocks))
    n_held = min(len(blocks) - 1, max(1, int(round(holdout * len(blocks)))))
    return [blocks[i] for i in order[n_held:]], [blocks[i] for i in order[:n_held]]


def pyramid_cells(blocks, patch, min_std=0.01):
    """The non-overlapping ``patch`` cells of every block at every level of :data:`PYRAMID`.

    Each block is bicubically downscaled by 1, 2 and 4 (:func:`undersr.resize.bicubic_downsample`), so that the
    classes are learnt on photos and on bicubic LR alike.

    Args:
        blocks (list[ndarray]): (S, S, 3) uint8 RGB from :func:`split_blocks`.
        patch (int): Cell side.
        min_std (float): Cells whose grey standard deviation (in [0, 1] units) is below this are dropped: flat
            regions look the same under blur or pixelation and would only confuse the classifier. It is low (a
            threshold of 0.03 left the clean class without low-contrast scenes, so the moon photo's LR was
            classified ``contrast``; docs/analysis.md).

    Returns:
        list[ndarray]: (patch, patch, 3) uint8 cells.

    Raises:
        ValueError: no textured cell.
    """
    cells = []
    for block in blocks:
        for scale in PYRAMID:
            level = bicubic_downsample(block, scale)
            for top in range(0, level.shape[0] - patch + 1, patch):
                for left in range(0, level.shape[1] - patch + 1, patch):
                    cell = level[top:top + patch, left:left + patch]
                    if cell.astype(np.float32).mean(axis=2).std() / 255. >= min_std:
                        cells.append(np.ascontiguousarray(cell))
    if not cells:
        raise ValueError(f'no textured {patch}×{patch} cell in {len(blocks)} regions: the photos are nearly flat')
    return cells


def make_corrupted_set(cells, per_class, rng, desc=None, classes=CLASSES, clean_weight=1):
    """Corrupts randomly chosen cells: ``per_class`` samples of every class, random severity 1..5 (ImageNet-C's).

    The clean class is the cell itself (with the same random flip or rotation as the others), ``clean_weight``
    times as many samples as the other classes.

    Returns:
        tuple[ndarray, ndarray, ndarray]: Images (N, P, P, 3) uint8 RGB, labels (N,) int64 (indices into
        ``classes``) and severities (N,) int64 (0 for clean).
    """
    images, labels, severities = [], [], []
    jobs = [(c, i) for c in range(len(classes))
            for i in range(per_class * (clean_weight if classes[c] == CLEAN else 1))]
    for c, _ in progress_bar(jobs, desc=desc or '', disable=not desc, leave=False):
        cell = cells[int(rng.integers(len(cells)))]
        cell = np.ascontiguousarray(np.rot90(cell, int(rng.integers(4))) if rng.random() < 0.5 else cell[:, ::-1])
        severity = int(rng.integers(1, 6)) if classes[c] != CLEAN else 0
        images.append(corrupt(cell, classes[c], severity, rng) if severity else cell)
        labels.append(c)
        severities.append(severity)
    return np.stack(images), np.asarray(labels, np.int64), np.asarray(severities, np.int64)


def _to_tensor(images):
    """(N, H, W, 3) uint8 RGB → (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.


def _softmax(model, x, batch_size=256):
    """(N, K) float64 class probabilities of ``model`` (put in eval mode) on (N, 3, P, P) ``x``, in batches on the
    model's device."""
    device = next(model.parameters()).device
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            probs.append(F.softmax(model(x[i:i + batch_size].to(device)), dim=1).double().cpu())
    return torch.cat(probs).numpy()


def _evaluate(model, x, y):
    """Predictions of ``model`` on (N, 3, P, P) ``x`` with labels (N,) ``y``: (accuracy, (N,) predictions, (K, K)
    confusion matrix with rows true and columns predicted, (N, K) softmax probabilities)."""
    probs = _softmax(model, x)
    pred = probs.argmax(axis=1)
    k = model.num_classes
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y.numpy(), pred), 1)
    return float((pred == y.numpy()).mean()), pred, confusion, probs


def youden_threshold(scores, positive):
    """The cut-off on ``scores`` that best separates positives from negatives (the largest TPR − FPR, Youden's J).

    Args:
        scores (ndarray): (N,) scores; a sample is called positive when its score is at least the cut-off.
        positive (ndarray): (N,) bool, with at least one positive and one negative.

    Returns:
        tuple[float, float, float]: The cut-off (half-way between two neighbouring distinct scores), and the true
        and false positive rates at it.
    """
    pos, neg = np.sort(scores[positive]), np.sort(scores[~positive])
    values = np.unique(scores)
    cuts = np.concatenate([[values[0] - 1e-6], (values[1:] + values[:-1]) / 2, [values[-1] + 1e-6]])
    tpr = 1 - np.searchsorted(pos, cuts, side='left') / len(pos)
    fpr = 1 - np.searchsorted(neg, cuts, side='left') / len(neg)
    best = int(np.argmax(tpr - fpr))
    return float(cuts[best]), float(tpr[best]), float(fpr[best])


def train_degradation_classifier(images=None, out_path=None, steps=1500, patch=32, device='auto', seed=0,
                                 batch_size=64, train_per_class=200, holdout_per_class=40, holdout=0.2, width=32,
                                 lr=2e-3, clean_weight=CLEAN_WEIGHT, progress=True, arch='small', init=None):
    """Trains a classifier on corrupted and clean patches of photos; reports held-out accuracy.

    A pool of ``16 · train_per_class`` training patches is made once (random cell, flip or rotation, class and
    ImageNet-C severity 1–5), and ``steps`` Adam steps (cosine learning rate) are taken on random batches of it with
    random flips and 90° rotations. The held-out set is ``16 · holdout_per_class`` patches of held-out regions (see
    the module docstring).

    Args:
        images (None | str | Sequence): Clean photos, see :func:`load_clean_images` (default: the demo's
            training parts).
        out_path (str | None): Where to save the checkpoint (not saved when ``None``).
        steps (int): Optimisation steps.
        patch (int): Patch side in pixels.
        device (str): ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'``, ...
        seed (int): Seeds the split, the corruptions, the initialisation and the batches.
        batch_size (int): Patches per step.
        train_per_class (int): Training patches per class in the pool.
        holdout_per_class (int): Held-out patches per class.
        holdout (float): Fraction of regions held out.
        width (int): Width of ``arch='small'``, see :class:`DegradationClassifier`.
        lr (float): Peak learning rate.
        clean_weight (int): Training patches of the clean class per patch of a corruption class.
        arch (str): ``'small'`` (:class:`DegradationClassifier`, the default: it trains in minutes on a CPU) or a
            torchvision ResNet of :data:`undersr.analysis.resnet.DEPTHS` (:class:`ResNetClassifier`;
            ``'resnet152'`` is the paper's §4.3 classifier, meant for a GPU).
        init (str | None): A local torchvision ImageNet state dict of the same ResNet to start from
            (:func:`undersr.analysis.resnet.load_imagenet_init`); ResNets only.
        progress (bool): Show progress (:func:`undersr.progress.progress`: a bar in a terminal, a line every 10 %
            in a log).

    Returns:
        dict: ``classes``, ``accuracy`` (held-out, in [0, 1]), ``chance`` (1/16), ``per_class_accuracy`` (class →
        accuracy), ``accuracy_by_severity`` (ImageNet-C severity 1–5 → held-out accuracy on the corrupted patches of
        that severity), ``confusion`` (16×16 list, rows true, columns predicted), ``clean_threshold`` (the cut-off on
        the clean probability that :func:`predict_labels` applies) with ``clean_threshold_rates`` (held-out clean
        patches called clean, corrupted patches called clean), ``train_accuracy``,
        ``train_samples``, ``holdout_samples``, ``steps``, ``network`` (``arch``), ``init``, ``seconds``,
        ``out_path``, ``model`` (the trained network, eval mode) and ``holdout_blocks`` (the held-out regions,
        (4P, 4P, 3) uint8, for :func:`undersr.analysis.evaluation.validate`).
    """
    if arch not in ARCHS:
        raise ValueError(f'unknown classifier arch {arch!r}; choose one of {", ".join(ARCHS)}')
    if init is not None and arch == 'small':
        raise ValueError('--init loads torchvision ImageNet weights into a ResNet; choose one with --arch (e.g. '
                         'resnet152) or leave --init out')
    start = time.time()
    device = resolve_device(device)
    clean, names = load_clean_images(images)
    train_blocks, held_blocks = split_blocks(clean, patch, holdout, seed)
    train_cells, held_cells = pyramid_cells(train_blocks, patch), pyramid_cells(held_blocks, patch)
    rng = np.random.default_rng(seed)
    x_train, y_train, _ = make_corrupted_set(train_cells, train_per_class, rng, progress and 'corrupting (train)',
                                             clean_weight=clean_weight)
    x_held, y_held, s_held = make_corrupted_set(held_cells, holdout_per_class, rng,
                                                progress and 'corrupting (held out)')
    x_train, y_train = _to_tensor(x_train), torch.from_numpy(y_train)
    x_held, y_held = _to_tensor(x_held), torch.from_numpy(y_held)

    torch.manual_seed(seed)
    if arch == 'small':
        arch_options = {'type': 'DegradationClassifier', 'num_classes': len(CLASSES), 'width': int(width)}
    else:
        arch_options = {'type': 'ResNetClassifier', 'num_classes': len(CLASSES), 'depth': arch}
    model = build_classifier(arch_options)
    if init is not None:
        load_imagenet_init(model, init)
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    bar = progress_bar(range(steps), desc='training classifier', unit='step', disable=not progress, leave=False)
    for step in bar:
        for group in optimizer.param_groups:
            group['lr'] = lr * 0.5 * (1 + math.cos(math.pi * step / max(steps, 1)))
        model.train()
        idx = torch.randint(len(x_train), (batch_size,), generator=generator)
        xb = x_train[idx]
        if torch.rand(1, generator=generator).item() < 0.5:
            xb = xb.flip(3)
        xb = torch.rot90(xb, int(torch.randint(4, (1,), generator=generator)), dims=(2, 3))
        loss = F.cross_entropy(model(xb.to(device)), y_train[idx].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f'{loss.item():.3f}')
    accuracy, pred, confusion, probs = _evaluate(model, x_held, y_held)
    train_accuracy = _evaluate(model, x_train, y_train)[0]
    correct = pred == y_held.numpy()
    # The clean class is trained on CLEAN_WEIGHT times as many patches as each corruption, so "most probable class"
    # is one arbitrary operating point of a clean detector; the cut-off on P(clean) with the best held-out TPR − FPR
    # (clean against every corruption) is the calibrated one that predict_labels applies.
    clean_index = CLASSES.index(CLEAN)
    threshold, clean_recall, false_clean = youden_threshold(probs[:, clean_index], y_held.numpy() == clean_index)
    result = {
        'classes': list(CLASSES), 'accuracy': accuracy, 'chance': 1 / len(CLASSES),
        'train_accuracy': train_accuracy,
        'per_class_accuracy': {c: float(confusion[i, i] / max(confusion[i].sum(), 1)) for i, c in enumerate(CLASSES)},
        'accuracy_by_severity': {str(v): float(correct[s_held == v].mean()) for v in range(1, 6)
                                 if (s_held == v).any()},
        'confusion': confusion.tolist(), 'clean_threshold': threshold,
        'clean_threshold_rates': {'clean_recall': clean_recall, 'false_clean': false_clean},
        'train_samples': len(x_train), 'holdout_samples': len(x_held),
        'train_cells': len(train_cells), 'holdout_cells': len(held_cells), 'holdout_regions': len(held_blocks),
        'steps': int(steps), 'patch': int(patch), 'network': arch, 'init': init,
        'width': int(width) if arch == 'small' else None, 'seed': int(seed), 'sources': names,
        'seconds': time.time() - start, 'out_path': out_path}
    if out_path:
        from undersr import __version__
        from undersr.weights import atomic_save
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        meta = {k: v for k, v in result.items() if k not in ('out_path', 'seconds')}
        atomic_save({'kind': CHECKPOINT_KIND, 'state_dict': model.cpu().state_dict(), 'arch': arch_options,
                     'undersr_version': __version__, 'batch_size': int(batch_size), 'lr': float(lr), **meta},
                    out_path)
        model.to(device)
    model.classes, model.patch, model.clean_threshold = list(CLASSES), int(patch), threshold
    model.meta = {k: v for k, v in result.items() if k != 'out_path'}
    result.update(model=model.eval(), holdout_blocks=held_blocks)
    return result


def load_degradation_classifier(path, device='cpu'):
    """Rebuilds a classifier saved by :func:`train_degradation_classifier`.

    Returns:
        nn.Module: :class:`DegradationClassifier` or :class:`ResNetClassifier`, in eval mode, with attributes
        ``classes`` (list[str]: :data:`CLASSES`, or the 15 corruptions without clean for a checkpoint of undersr before
        the clean class), ``patch`` (int), ``clean_threshold`` (float, or ``None`` for a checkpoint of undersr before
        it) and ``meta`` (the checkpoint without the weights).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a degradation-classifier checkpoint, or its weights do not fit its network.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'classifier checkpoint not found: {path}. Train one with `undersr '
                                'train-degradation-classifier --out PATH`.')
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get('kind') != CHECKPOINT_KIND:
        raise ValueError(f'{path} is not a degradation-classifier checkpoint (written by `undersr '
                         'train-degradation-classifier`)')
    try:
        model = build_classifier(ckpt['arch'])
        model.load_state_dict(ckpt['state_dict'])
    except (ValueError, TypeError, RuntimeError) as err:
        raise ValueError(f'{path}: its weights do not fit its recorded network {ckpt.get("arch")} ({err}); '
                         'retrain it with `undersr train-degradation-classifier`') from err
    model.classes = list(ckpt['classes'])
    model.patch = int(ckpt['patch'])
    model.clean_threshold = ckpt.get('clean_threshold')
    model.meta = {k: v for k, v in ckpt.items() if k != 'state_dict'}
    return model.to(device).eval()


def _patches(image, patch, count):
    """Up to ``count`` non-overlapping ``patch`` cells of an (H, W, 3) image, spread evenly over its grid.

    Images smaller than ``patch`` are mirrored (or edge-replicated when tiny) up to ``patch`` first.
    """
    h, w = image.shape[:2]
    if h < patch or w < patch:
        pad_h, pad_w = max(0, patch - h), max(0, patch - w)
        mode = cv2.BORDER_REFLECT_101 if pad_h < h and pad_w < w else cv2.BORDER_REPLICATE
        image = cv2.copyMakeBorder(np.ascontiguousarray(image), 0, pad_h, 0, pad_w, mode)
        h, w = image.shape[:2]
    rows, cols = h // patch, w // patch
    off_y, off_x = (h - rows * patch) // 2, (w - cols * patch) // 2
    grid = [(off_y + r * patch, off_x + c * patch) for r in range(rows) for c in range(cols)]
    chosen = np.linspace(0, len(grid) - 1, min(count, len(grid))).round().astype(int)
    return np.stack([image[grid[i][0]:grid[i][0] + patch, grid[i][1]:grid[i][1] + patch] for i in chosen])


def predict_proba(model, images, patches_per_image=16, batch_size=256):
    """Class probabilities per image: the mean softmax over up to ``patches_per_image`` patches of each.

    Args:
        model (DegradationClassifier): With a ``patch`` attribute (as loaded), else 64 is used.
        images (Sequence[ndarray] | ndarray | Tensor): (H, W, 3) uint8 RGB arrays (any sizes), an (N, H, W, 3)
            uint8 array, or an (N, 3, H, W) float tensor in [0, 1].
        patches_per_image (int): Patches averaged per image.
        batch_size (int): Patches per forward pass.

    Returns:
        ndarray: (N, num_classes) float64, rows summing to 1.
    """
    patch = int(getattr(model, 'patch', 64))
    if isinstance(images, torch.Tensor):
        images = to_uint8(images.detach().permute(0, 2, 3, 1).cpu().numpy())
    stacks = []
    for image in images:
        image = np.asarray(image)
        if image.dtype != np.uint8:
            image = to_uint8(image)
        stacks.append(_patches(image, patch, patches_per_image))
    if not stacks:
        return np.zeros((0, model.num_classes))
    counts = [len(s) for s in stacks]
    probs = _softmax(model, _to_tensor(np.concatenate(stacks)), batch_size)
    bounds = np.cumsum([0] + counts)
    return np.stack([probs[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])


def predict_labels(model, images, **options):
    """Per image, the predicted class and the predicted corruption (the argmax over the 15 corruptions only).

    An image is clean when its clean probability reaches the classifier's calibrated ``clean_threshold`` (see
    :func:`train_degradation_classifier`); otherwise its class is its most probable corruption. A checkpoint without
    a threshold (undersr before it) takes the most probable of all classes.

    Args:
        model (nn.Module): Predicting :data:`CLASSES`, or only the 15 corruptions (an older checkpoint); optional
            attribute ``clean_threshold`` (float | None).
        images: As for :func:`predict_proba`.
        **options: Further :func:`predict_proba` options.

    Returns:
        tuple[ndarray, ndarray, ndarray]: (N,) int64 indices into ``model.classes``, (N,) int64 indices into
        :data:`CORRUPTIONS` (clean masked out: the paper's forced choice among 15 types) and (N,) float64
        probability of the first.
    """
    probs = predict_proba(model, images, **options)
    if not len(probs):
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    corruption = probs[:, :len(CORRUPTIONS)].argmax(axis=1)
    threshold = getattr(model, 'clean_threshold', None)
    if threshold is None or probs.shape[1] == len(CORRUPTIONS):
        labels = probs.argmax(axis=1)
    else:
        labels = np.where(probs[:, len(CORRUPTIONS)] >= threshold, len(CORRUPTIONS), corruption)
    return labels, corruption, probs[np.arange(len(probs)), labels]
