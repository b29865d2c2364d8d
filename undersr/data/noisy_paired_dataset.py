"""``NoisyPairedImageDataset``: BasicSR's paired dataset with mild Gaussian noise added to some training LR crops.

A model trained only on clean bicubic pairs learns to sharpen whatever high frequencies its input has, noise
included. ``undersr demo`` pre-trains its stand-in for official weights with this dataset so that the starting
point of every fine-tune is an SR model that does not fall below bicubic upsampling on noisy photos (issue 11;
docs/demo-choices.md, section 8). The options follow Real-ESRGAN's ``noise_range`` (σ in 8-bit units):

.. code-block:: yaml

    type: NoisyPairedImageDataset
    dataroot_gt: datasets/DF2K/HR
    dataroot_lq: datasets/DF2K/LR_bicubic_X4
    noise_prob: 0.5          # share of training crops that get noise
    noise_range: [0, 4]      # σ ~ U[0, 4] / 255, one σ per crop, independent per pixel and channel
    io_backend: {type: disk}
    # ... every other PairedImageDataset option
"""
import numpy as np
import torch
from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class NoisyPairedImageDataset(PairedImageDataset):
    """``PairedImageDataset`` whose training LR crops get Gaussian noise with probability ``noise_prob``.

    The noisy crop is clipped to [0, 1] and rounded to 8 bits, as a saved photo would be. Only the training phase
    adds noise; validation pairs are read as they are. Randomness comes from NumPy's global generator, which BasicSR
    seeds from ``manual_seed`` (and per data-loader worker).

    Args:
        opt (dict): ``PairedImageDataset``'s options plus ``noise_prob`` (float in [0, 1], default 0.5) and
            ``noise_range`` (``[low, high]``, σ in 8-bit units with 0 ≤ low ≤ high, default ``[0, 4]``).

    Raises:
        ValueError: ``noise_prob`` outside [0, 1] or a malformed ``noise_range``.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.noise_prob = float(opt.get('noise_prob', 0.5))
        self.noise_range = [float(v) for v in opt.get('noise_range', (0, 4))]
        if not 0 <= self.noise_prob <= 1:
            raise ValueError(f'NoisyPairedImageDataset: noise_prob must be in [0, 1], got {self.noise_prob}')
        if len(self.noise_range) != 2 or not 0 <= self.noise_range[0] <= self.noise_range[1]:
            raise ValueError(f'NoisyPairedImageDataset: noise_range must be [low, high] with 0 <= low <= high '
                             f'(σ in 8-bit units), got {opt.get("noise_range")}')

    def __getitem__(self, index):
        """Returns PairedImageDataset's item; ``lq`` (3, h, w) in [0, 1] may carry noise (training phase)."""
        item = super().__getitem__(index)
        if self.opt['phase'] == 'train' and np.random.uniform() < self.noise_prob:
            sigma = np.random.uniform(*self.noise_range) / 255
            noise = torch.from_numpy(np.random.standard_normal(item['lq'].shape).astype(np.float32))
            item['lq'] = ((item['lq'] + sigma * noise).clamp(0, 1) * 255).round() / 255
        return item
