"""``NoisyPairedImageDataset``: BasicSR's paired dataset with Gaussian noise added to a share of the training LR crops.

A model trained only on clean bicubic pairs learns to sharpen whatever high frequencies its input has, noise
included. ``undersr demo`` pre-trains its stand-in for official weights with this dataset so that the starting
point of every fine-tune is an SR model that does not fall below bicubic upsampling on noisy photos (issue 11;
docs/demo-choices.md, section 8). The options follow Real-ESRGAN's ``noise_range`` (σ in 8-bit units):

.. code-block:: yaml

    type: NoisyPairedImageDataset
    dataroot_gt: datasets/DF2K/HR
    dataroot_lq: datasets/DF2K/LR_bicubic_X4
    noise_prob: 0.5          # share of training crops that get noise
    noise_range: [0, 16]     # σ ~ U[0, 16] / 255, one σ per crop, independent per pixel and channel
    io_backend: {type: disk}
    # ... every other PairedImageDataset option
"""
from undersr.noise import GaussianNoise

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class NoisyPairedImageDataset(PairedImageDataset):
    """``PairedImageDataset`` whose training LR crops get Gaussian noise with probability ``noise_prob``.

    The noise is :class:`undersr.noise.GaussianNoise` (clipped and rounded to 8 bits), the same as the ``lq_noise``
    option of the ``Undertrained*Model`` classes adds to degraded LR. Only the training phase adds noise;
    validation pairs are read as they are.

    Args:
        opt (dict): ``PairedImageDataset``'s options plus ``noise_prob`` (float in [0, 1]) and ``noise_range``
            (``[low, high]``, σ in 8-bit units with 0 ≤ low ≤ high), both required.

    Raises:
        ValueError: A missing option, ``noise_prob`` outside [0, 1] or a malformed ``noise_range``.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.noise = GaussianNoise(opt.get('noise_prob'), opt.get('noise_range'), owner='NoisyPairedImageDataset')

    def __getitem__(self, index):
        """Returns PairedImageDataset's item; ``lq`` (3, h, w) in [0, 1] may carry noise (training phase)."""
        item = super().__getitem__(index)
        if self.opt['phase'] == 'train':
            item['lq'] = self.noise(item['lq'][None])[0]
        return item
