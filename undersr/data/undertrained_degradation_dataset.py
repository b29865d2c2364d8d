"""On-the-fly undertrained degradation inside DataLoader workers (CPU): fresh degraded LR every epoch."""
from undersr.data.recon_image_dataset import ReconImageDataset
from undersr.degrade import Degrader

import torch
from basicsr.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class UndertrainedDegradationDataset(ReconImageDataset):
    """HR crops paired with LR made by :class:`undersr.degrade.Degrader` in the worker that loads them.

    Each item is ``{'gt': (3, gt_size, gt_size), 'lq': (3, gt_size/scale, gt_size/scale), 'gt_path', 'lq_path',
    'source', 'seed'}`` (RGB in [0, 1]; ``source`` is the index of the reconstruction checkpoint used, ``seed`` the
    sample's seed: ``Degrader(...)(gt[None], [seed])`` gives the same ``lq``). Each call draws a new seed from
    torch's generator, which PyTorch's DataLoader seeds in every worker from a base seed that it draws anew each
    epoch (from the main process's generator, which BasicSR seeds with ``manual_seed``). So every epoch sees new
    degradations, and a run with the same ``manual_seed`` repeats itself. (Python's ``random``, which BasicSR
    re-seeds identically in every epoch's new workers, would repeat the same seeds each epoch.)

    Args:
        opt (dict): Everything :class:`ReconImageDataset` takes (``dataroot_gt``, ``gt_size``, flips, ``skip_bad``),
            plus ``scale`` (set by BasicSR from the top level) and ``degradation``, whose keys are the arguments of
            :class:`~undersr.degrade.Degrader`: ``recon`` (checkpoint list), ``weights``, ``color_correct``.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.scale = int(opt['scale'])
        if self.train and opt['gt_size'] % self.scale:
            raise ValueError(f'gt_size {opt["gt_size"]} is not divisible by scale {self.scale}')
        self.degradation_opt = dict(opt['degradation'])
        self.degrader = None  # built in each worker on first use: networks are not pickled to workers

    def __getitem__(self, index):
        item = super().__getitem__(index)
        if self.degrader is None:  # DataLoader workers already run with one torch thread each
            self.degrader = Degrader(**self.degradation_opt, scale=self.scale, device='cpu')
        gt = item['gt']
        gt = gt[:, :gt.shape[1] // self.scale * self.scale, :gt.shape[2] // self.scale * self.scale]
        seed = int(torch.randint(2**62, ()))
        out = self.degrader(gt[None], [seed])
        item.update(gt=gt, lq=out['lq'][0], lq_path=item['gt_path'], source=int(out['source'][0]), seed=seed)
        return item
