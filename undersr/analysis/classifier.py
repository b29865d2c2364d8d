"""A small CNN that tells which ImageNet-C corruption an image patch shows (the diversity probe of paper §4.3).

The paper measures how diverse the degradations of a dataset are by classifying each degraded image into one of
the 15 ImageNet-C corruption types and taking the entropy of the predicted types (:mod:`undersr.analysis.metrics`).
This module trains that classifier on the fly from clean photos: patches are cut from the images, corrupted with a
random type and severity (:mod:`undersr.analysis.corruptions`), and learnt. By default the clean photos are the
colour images bundled with scikit-image (:data:`undersr.sample_data.COLOR_IMAGES`), so nothing is downloaded; a
folder of your own photos (e.g. DIV2K) gives a stronger classifier.

Held-out split: every image is cut into a grid of non-overlapping ``patch`` × ``patch`` cells (nearly flat cells
are dropped); a fixed, seeded fraction of the cells is held out. Training and held-out patches therefore never share
a pixel, and the reported accuracy is measured on cells the network never saw (with fresh corruptions).

Checkpoints are self-describing: ``classes``, ``arch`` (constructor options), ``patch``, ``accuracy`` (held out),
``per_class_accuracy``, ``confusion`` and the training settings; :func:`load_degradation_classifier` needs only
the file.
"""
import math
import os
import time

from undersr.analysis.corruptions import CORRUPTIONS, corrupt
from undersr.device import resolve_device
from undersr.image_io import read_rgb, to_uint8
from undersr.progress import progress as progress_bar

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ['DegradationClassifier', 'train_degradation_classifier', 'load_degradation_classifier', 'predict_proba',
           'CHECKPOINT_KIND']

CHECKPOINT_KIND = 'undersr-degradation-classifier'


class DegradationClassifier(nn.Module):
    """Three stages of two 3×3 convolutions (BatchNorm, ReLU; stride 2 between stages), then mean and standard
    deviation pooling (global statistics matter for noise, contrast and colour corruptions) and a linear layer.

    Args:
        num_classes (int): Output classes (15 ImageNet-C types).
        width (int): Channels of the first stage (doubled per stage).

    Input (N, 3, P, P) RGB in [0, 1], any P ≥ 4; output logits (N, num_classes).
    """

    def __init__(self, num_classes=len(CORRUPTIONS), width=32):
        super().__init__()
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


def load_clean_images(images=None):
    """The clean RGB photos to corrupt.

    Args:
        images (None | str | Sequence[str | ndarray]): ``None``: the scikit-image colour photos of
            :data:`undersr.sample_data.COLOR_IMAGES`; a folder: every image under it; or a list of paths and/or
            (H, W, 3) uint8 RGB arrays.

    Returns:
        tuple[list[ndarray], list[str]]: (H, W, 3) uint8 RGB images and their names.
    """
    from undersr import sample_data
    from undersr.data.image_source import list_folder

    if images is None:
        names = list(sample_data.COLOR_IMAGES)
        return [sample_data.load(n) for n in names], names
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


def split_cells(images, patch, holdout, seed, min_std=0.03):
    """Cuts each image into non-overlapping ``patch`` cells and splits them into training and held-out sets.

    Args:
        images (list[ndarray]): (H, W, 3) uint8 RGB.
        patch (int): Cell side.
        holdout (float): Fraction of cells held out (at least one per split overall).
        seed (int): Seed of the split.
        min_std (float): Cells whose grey standard deviation (in [0, 1] units) is below this are dropped: flat
            regions look the same under blur or pixelation and would only confuse the classifier.

    Returns:
        tuple[list, list]: Training and held-out cells, each a list of (patch, patch, 3) uint8 arrays.
    """
    cells = []
    for image in images:
        h, w = image.shape[:2]
        for top in range(0, h - patch + 1, patch):
            for left in range(0, w - patch + 1, patch):
                cell = image[top:top + patch, left:left + patch]
                if cell.astype(np.float32).mean(axis=2).std() / 255. >= min_std:
                    cells.append(np.ascontiguousarray(cell))
    if len(cells) < 2:
        raise ValueError(f'need at least 2 textured {patch}×{patch} cells to split, found {len(cells)}; use larger '
                         'or more images, or a smaller patch')
    order = np.random.default_rng(seed).permutation(len(cells))
    n_held = min(len(cells) - 1, max(1, int(round(holdout * len(cells)))))
    return [cells[i] for i in order[n_held:]], [cells[i] for i in order[:n_held]]


def make_corrupted_set(cells, per_class, rng, desc=None):
    """Corrupts randomly chosen cells: ``per_class`` samples of every class, random severity 1..5.

    Returns:
        tuple[ndarray, ndarray]: Images (N, P, P, 3) uint8 RGB and labels (N,) int64, N = 15 · per_class.
    """
    images, labels = [], []
    jobs = [(c, i) for c in range(len(CORRUPTIONS)) for i in range(per_class)]
    for c, _ in progress_bar(jobs, desc=desc or '', disable=not desc, leave=False):
        cell = cells[int(rng.integers(len(cells)))]
        cell = np.rot90(cell, int(rng.integers(4))) if rng.random() < 0.5 else cell[:, ::-1]
        images.append(corrupt(np.ascontiguousarray(cell), CORRUPTIONS[c], int(rng.integers(1, 6)), rng))
        labels.append(c)
    return np.stack(images), np.asarray(labels, np.int64)


def _to_tensor(images):
    """(N, H, W, 3) uint8 RGB → (N, 3, H, W) float32 in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.


def _evaluate(model, x, y, device, batch_size=256):
    model.eval()
    preds = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            preds.append(model(x[i:i + batch_size].to(device)).argmax(dim=1).cpu())
    pred = torch.cat(preds).numpy()
    k = len(CORRUPTIONS)
    confusion = np.zeros((k, k), np.int64)
    np.add.at(confusion, (y.numpy(), pred), 1)
    per_class = confusion.diagonal() / np.maximum(confusion.sum(axis=1), 1)
    return float((pred == y.numpy()).mean()), per_class, confusion


def train_degradation_classifier(images=None, out_path=None, steps=2000, patch=64, device='auto', seed=0,
                                 batch_size=64, train_per_class=200, holdout_per_class=40, holdout=0.2, width=32,
                                 lr=2e-3, progress=True):
    """Trains :class:`DegradationClassifier` on corrupted patches of clean photos and reports held-out accuracy.

    A pool of ``15 · train_per_class`` corrupted training patches is made once (random cell, flip or rotation,
    type and severity), and ``steps`` Adam steps (cosine learning rate) are taken on random batches of it with
    random flips and 90° rotations. The held-out set is ``15 · holdout_per_class`` corrupted patches of held-out
    cells (see the module docstring).

    Args:
        images (None | str | Sequence): Clean photos, see :func:`load_clean_images` (default: scikit-image's).
        out_path (str | None): Where to save the checkpoint (not saved when ``None``).
        steps (int): Optimisation steps.
        patch (int): Patch side in pixels.
        device (str): ``'auto'`` (CUDA when available), ``'cpu'``, ``'cuda'``, ...
        seed (int): Seeds the split, the corruptions, the initialisation and the batches.
        batch_size (int): Patches per step.
        train_per_class (int): Training patches per class in the pool.
        holdout_per_class (int): Held-out patches per class.
        holdout (float): Fraction of cells held out.
        width (int): Network width, see :class:`DegradationClassifier`.
        lr (float): Peak learning rate.
        progress (bool): Show progress bars.

    Returns:
        dict: ``accuracy`` (held-out, in [0, 1]), ``chance`` (1/15), ``per_class_accuracy`` (class → accuracy),
        ``confusion`` (15×15 list, rows true, columns predicted), ``train_accuracy``, ``train_samples``,
        ``holdout_samples``, ``steps``, ``seconds``, ``out_path`` and ``model`` (the trained network, eval mode).
    """
    start = time.time()
    device = resolve_device(device)
    clean, names = load_clean_images(images)
    train_cells, held_cells = split_cells(clean, patch, holdout, seed)
    rng = np.random.default_rng(seed)
    x_train, y_train = make_corrupted_set(train_cells, train_per_class, rng, progress and 'corrupting (train)')
    x_held, y_held = make_corrupted_set(held_cells, holdout_per_class, rng, progress and 'corrupting (held out)')
    x_train, y_train = _to_tensor(x_train), torch.from_numpy(y_train)
    x_held, y_held = _to_tensor(x_held), torch.from_numpy(y_held)

    torch.manual_seed(seed)
    arch = {'num_classes': len(CORRUPTIONS), 'width': int(width)}
    model = DegradationClassifier(**arch).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    bar = progress_bar(range(steps), desc='training classifier', disable=not progress, leave=False)
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
    accuracy, per_class, confusion = _evaluate(model, x_held, y_held, device)
    train_accuracy, _, _ = _evaluate(model, x_train, y_train, device)
    result = {
        'accuracy': accuracy, 'chance': 1 / len(CORRUPTIONS), 'train_accuracy': train_accuracy,
        'per_class_accuracy': {c: float(a) for c, a in zip(CORRUPTIONS, per_class)},
        'confusion': confusion.tolist(), 'train_samples': len(x_train), 'holdout_samples': len(x_held),
        'train_cells': len(train_cells), 'holdout_cells': len(held_cells), 'steps': int(steps), 'patch': int(patch),
        'seed': int(seed), 'sources': names, 'seconds': time.time() - start, 'out_path': out_path}
    if out_path:
        from undersr import __version__
        from undersr.weights import atomic_save
        os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
        meta = {k: v for k, v in result.items() if k not in ('out_path', 'seconds')}
        atomic_save({'kind': CHECKPOINT_KIND, 'state_dict': model.cpu().state_dict(), 'arch': arch,
                     'classes': list(CORRUPTIONS), 'undersr_version': __version__, 'batch_size': int(batch_size),
                     'lr': float(lr), **meta}, out_path)
        model.to(device)
    result['model'] = model.eval()
    return result


def load_degradation_classifier(path, device='cpu'):
    """Rebuilds a classifier saved by :func:`train_degradation_classifier`.

    Returns:
        DegradationClassifier: In eval mode, with attributes ``classes`` (list[str]), ``patch`` (int) and
        ``meta`` (the checkpoint without the weights).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a degradation-classifier checkpoint.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f'classifier checkpoint not found: {path}. Train one with `undersr '
                                'train-degradation-classifier --out PATH`.')
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(ckpt, dict) or ckpt.get('kind') != CHECKPOINT_KIND:
        raise ValueError(f'{path} is not a degradation-classifier checkpoint (written by `undersr '
                         'train-degradation-classifier`)')
    model = DegradationClassifier(**ckpt['arch'])
    model.load_state_dict(ckpt['state_dict'])
    model.classes = list(ckpt['classes'])
    model.patch = int(ckpt['patch'])
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
        return np.zeros((0, len(getattr(model, 'classes', CORRUPTIONS))))
    counts = [len(s) for s in stacks]
    x = _to_tensor(np.concatenate(stacks))
    device = next(model.parameters()).device
    model.eval()
    probs = []
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            probs.append(F.softmax(model(x[i:i + batch_size].to(device)), dim=1).double().cpu())
    probs = torch.cat(probs).numpy()
    bounds = np.cumsum([0] + counts)
    return np.stack([probs[a:b].mean(axis=0) for a, b in zip(bounds[:-1], bounds[1:])])
