"""Writes the demo's data: reconstruction patches, SR training tiles, validation and held-aside test pairs.

Layout under ``DIR/data`` (the option files under ``options/demo/`` point at it)::

    patches/*.png              32² patches of the training parts' bicubic LR: the reconstruction network's data
    train/{gt,lq}/*.png        HR tiles of the training parts and their bicubic ×4 LR
    train/lq_realistic/*.png   the same tiles under the test's realistic degradations, one per tile in turn
                               (the ceiling fine-tune's oracle data: docs/demo-choices.md, section 13)
    val/gt/*.png               validation parts of the training-side photos (HR)
    val/lq/<degradation>/*.png their LR under each test degradation (other seeds than the test)
    test/gt/*.png              held-aside photos (HR, centre crops)
    test/lq/<degradation>/*.png
    test/lr_photos/*.png       held-aside photos at their own resolution, as LR without ground truth (NIQE)
"""
import os
from os import path as osp

from undersr.demo.degradations import DEGRADATIONS, REALISTIC, SCALE
from undersr.demo.photos import TEST_PHOTOS, TRAIN_PHOTOS, load_photo, split_train_val
from undersr.progress import progress
from undersr.resize import bicubic_downsample
from undersr.sample_data import center_crop
from undersr.visualize import save_image

import numpy as np

REALISTIC_SEED = 100_000  # first seed of the training tiles' realistic degradations


def write_png(path, rgb):
    """Writes an (H, W, 3) uint8 RGB image as PNG."""
    save_image(path, np.ascontiguousarray(rgb[..., ::-1]))


def tiles(image, size, stride):
    """Square tiles of ``size`` every ``stride`` pixels (and one flush with the far edges)."""
    h, w = image.shape[:2]
    if min(h, w) < size:
        return []
    tops = sorted({*range(0, h - size + 1, stride), h - size})
    lefts = sorted({*range(0, w - size + 1, stride), w - size})
    return [image[t:t + size, s:s + size] for t in tops for s in lefts]


def prepare(root, size):
    """Writes every image the demo reads; returns the number of files per folder.

    Args:
        root (str): ``DIR/data``.
        size (dict): ``patches`` (count) and ``patch`` (side) of the reconstruction data, ``tile`` and ``stride``
            (HR training tiles), ``val_crop`` and ``test_crop`` (largest HR side of the validation parts and test
            photos), ``lr_photo`` (side of the no-ground-truth LR crops).
    """
    rng = np.random.default_rng(0)
    train_lr, counts, tile_count = [], {}, 0
    for index, name in enumerate(progress(TRAIN_PHOTOS, desc='training-side photos')):
        train, val = split_train_val(load_photo(name), SCALE)
        train_lr.append(bicubic_downsample(train, SCALE))
        for k, hr in enumerate(tiles(train, size['tile'], size['stride'])):
            write_png(osp.join(root, 'train', 'gt', f'{name}_{k:03d}.png'), hr)
            write_png(osp.join(root, 'train', 'lq', f'{name}_{k:03d}.png'), bicubic_downsample(hr, SCALE))
            # seeds from REALISTIC_SEED on: validation (1000 + i) and test (i) use others
            degrade = DEGRADATIONS[REALISTIC[tile_count % len(REALISTIC)]][0]
            write_png(osp.join(root, 'train', 'lq_realistic', f'{name}_{k:03d}.png'),
                      degrade(hr, REALISTIC_SEED + tile_count))
            tile_count += 1
        write_degraded(osp.join(root, 'val'), name, center_crop(val, size['val_crop'], multiple=SCALE), 1000 + index)
    # The reconstruction network's Tiny-ImageNet (paper §3.2: small, downsampled photos): small patches of the
    # training parts' bicubic LR, the images it will reconstruct when it degrades, from the training parts only.
    side = size['patch']
    for i in range(size['patches']):
        image = train_lr[i % len(train_lr)]
        top, left = rng.integers(0, image.shape[0] - side + 1), rng.integers(0, image.shape[1] - side + 1)
        write_png(osp.join(root, 'patches', f'{i:05d}.png'), image[top:top + side, left:left + side])
    for index, name in enumerate(TEST_PHOTOS):
        photo = load_photo(name)
        write_degraded(osp.join(root, 'test'), name, center_crop(photo, size['test_crop'], multiple=SCALE), index)
        write_png(osp.join(root, 'test', 'lr_photos', f'{name}.png'), center_crop(photo, size['lr_photo']))
    for folder in ('patches', 'train/gt', 'train/lq_realistic', 'val/gt', 'test/gt', 'test/lr_photos'):
        counts[folder] = len(os.listdir(osp.join(root, folder)))
    return counts


def write_degraded(root, name, hr, seed):
    """Writes ``root/gt/<name>.png`` and ``root/lq/<degradation>/<name>.png`` for every test degradation."""
    write_png(osp.join(root, 'gt', f'{name}.png'), hr)
    for degradation, (function, _) in DEGRADATIONS.items():
        write_png(osp.join(root, 'lq', degradation, f'{name}.png'), function(hr, seed))
