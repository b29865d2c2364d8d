"""Bicubic pairs whose LR carries a CIELAB colour shift: the colour-shift control experiment of the paper (§4.3).

The paper trains SwinIR from scratch on bicubic data whose LR is shifted in LAB by growing colour differences and
finds every metric on Set14, B100 and Manga109 worse as ΔE grows, concluding that colour difference must be kept
out of SR training data. The paper gives no more detail; this dataset is our reading of it (docs/paper-choices.md).
"""
import math

from undersr.color import lab_to_rgb, rgb_to_lab
from undersr.data.recon_image_dataset import ReconImageDataset
from undersr.resize import bicubic_downsample

import torch
from basicsr.utils.registry import DATASET_REGISTRY


def lab_offset(delta_e, generator, lightness=False):
    """A CIELAB offset of Euclidean length ``delta_e`` in a random direction.

    Args:
        delta_e (float): Length of the offset: the CIE76 colour difference it adds to every pixel (before
            clipping to the sRGB gamut).
        generator (torch.Generator): Draws the direction.
        lightness (bool): False: a hue direction in the a*b* plane (a pure colour cast, L* unchanged); True: a
            direction uniform on the sphere in (L*, a*, b*).

    Returns:
        Tensor: (3,) float32 (ΔL*, Δa*, Δb*).
    """
    if lightness:
        direction = torch.randn(3, generator=generator)
        return delta_e * direction / direction.norm().clamp_min(1e-12)
    angle = float(torch.rand((), generator=generator)) * 2 * math.pi
    return torch.tensor([0.0, delta_e * math.cos(angle), delta_e * math.sin(angle)])


def shift_colors(lr, offset):
    """Adds a CIELAB offset to images.

    Args:
        lr (Tensor): (N, 3, h, w) sRGB in [0, 1].
        offset (Tensor): (3,) or (N, 3) Lab offsets.

    Returns:
        Tensor: (N, 3, h, w) sRGB, clipped to [0, 1].
    """
    lab = rgb_to_lab(lr) + offset.to(lr).reshape(-1, 3, 1, 1)
    return lab_to_rgb(lab, clip=True)


@DATASET_REGISTRY.register()
class ColorShiftDataset(ReconImageDataset):
    """HR crops paired with their bicubic LR shifted in CIELAB by ``delta_e`` in a random direction per sample.

    Each item is ``{'gt': (3, gt_size, gt_size), 'lq': (3, gt_size/scale, gt_size/scale), 'gt_path', 'lq_path',
    'seed', 'lab_offset'}`` (RGB in [0, 1]): ``lq`` is the MATLAB-compatible bicubic ×``scale`` of ``gt``
    (:func:`undersr.resize.bicubic_downsample`) plus :func:`lab_offset`, whose direction comes from the sample's
    seed. Seeds are drawn from torch's generator, which the DataLoader seeds per worker and epoch (as in
    :class:`~undersr.data.undertrained_degradation_dataset.UndertrainedDegradationDataset`), so every epoch sees
    new directions. With ``delta_e: 0`` the pairs are plain bicubic pairs: the control.

    Args:
        opt (dict): Everything :class:`ReconImageDataset` takes (``dataroot_gt``, ``gt_size``, flips, ...), plus
            ``scale`` (set by BasicSR from the top level), ``delta_e`` (the shift's length, CIE76 units) and
            ``shift_lightness`` (default false: shift hue only, see :func:`lab_offset`).
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.scale = int(opt['scale'])
        self.delta_e = float(opt.get('delta_e', 0))
        if self.delta_e < 0:
            raise ValueError(f'ColorShiftDataset: delta_e must be >= 0, got {self.delta_e}')
        if self.train and opt['gt_size'] % self.scale:
            raise ValueError(f'gt_size {opt["gt_size"]} is not divisible by scale {self.scale}')
        self.lightness = bool(opt.get('shift_lightness', False))

    def __getitem__(self, index):
        item = super().__getitem__(index)
        gt = item['gt']
        gt = gt[:, :gt.shape[1] // self.scale * self.scale, :gt.shape[2] // self.scale * self.scale]
        seed = int(torch.randint(2**62, ()))
        offset = lab_offset(self.delta_e, torch.Generator().manual_seed(seed), self.lightness)
        with torch.no_grad():
            lq = bicubic_downsample(gt[None], self.scale).clamp(0, 1)
            if self.delta_e:
                lq = shift_colors(lq, offset)
        item.update(gt=gt, lq=lq[0], lq_path=item['gt_path'], seed=seed, lab_offset=offset)
        return item
