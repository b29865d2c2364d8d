"""The on-the-fly undertrained degradation shared by the ``Undertrained*Model`` classes.

This module has no ``_model.py`` suffix, so the registry scan of :mod:`undersr.models` does not import it for
registration: it defines no model of its own, only :class:`UndertrainedMixin`, which the registered models put
in front of a BasicSR model class.
"""
import random
from os import path as osp

from undersr.degrade import Degrader
from undersr.noise import GaussianNoise
from undersr.visualize import image_grid, save_image

import torch
from basicsr.models.realesrnet_model import RealESRNetModel
from basicsr.utils import DiffJPEG, USMSharp, tensor2img


class UndertrainedMixin:
    """Makes a BasicSR model's training ``lq`` from ``gt`` with undertrained reconstruction networks.

    Use it as the first base, before the BasicSR model, e.g. ``class M(UndertrainedMixin, SRModel)``: every method
    here extends the BasicSR one through ``super()``, so the model's losses, optimizers and test stay its own.

    The training dataset only needs to give HR crops (``gt``), e.g. ``ReconImageDataset``. ``feed_data`` degrades
    the batch on the training device. Unlike Real-ESRGAN, whose model applies one degradation to the whole batch,
    every sample draws its own source (paper §4.3: diverse degradations help). Validation uses the dataset's own
    ``lq``.

    Options (besides the BasicSR model's)::

        degradation:             # arguments of undersr.degrade.Degrader
          recon: [experiments/train_VQVAE2_tinyimagenet/models/net_g_ep8.pth]
          weights: ~             # probabilities of the sources, default uniform
          color_correct: none    # or lab-stats
          channels_last: ~       # ~: auto (on for CUDA; on the CPU for the networks that gain from it)
          amp: ~                 # ~: float32; auto: bf16 on a CUDA device that supports it (docs/benchmarks.md)
        save_lq_every: 1000      # optional: write visualization/train_lq/<iter>.png (gt | bicubic | degraded)
        realesrgan_prob: 0.3     # optional, for ablations: per sample, use Real-ESRGAN's second-order degradation
        lq_noise:                # optional: Gaussian noise on a share of the degraded LR (undersr.noise.GaussianNoise,
          noise_prob: 0.5        # as NoisyPairedImageDataset adds it to bicubic LR), σ ~ U[noise_range] / 255
          noise_range: [0, 16]

    ``lq_noise`` keeps a pre-training recipe's noise augmentation during the fine-tune, so that the fine-tune changes
    only the LR source (docs/demo-choices.md, section 10). It applies last, to every sample drawn, whatever its
    source; it is nested so that its ``noise_range`` cannot be confused with Real-ESRGAN's top-level one.

    With ``realesrgan_prob > 0`` the training dataset must be BasicSR's ``RealESRGANDataset`` (it provides the blur
    kernels) and the options must carry Real-ESRGAN's degradation settings (``resize_prob``, ``noise_range``, ...,
    ``gt_size``, ``gt_usm``), exactly as in its official option files. BasicSR's pipeline then degrades the batch,
    and each sample keeps that result with probability ``realesrgan_prob`` instead of the undertrained one;
    ``self.lq_source`` records which. Real-ESRGAN's training-pair pool is not used, so sources stay per sample.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.degrade_on_feed = self.is_train
        if self.is_train:  # only training feeds degrade (feed_data)
            self.degrader = Degrader(**opt['degradation'], scale=opt['scale'], device=self.device)
            self.noise = GaussianNoise(**opt['lq_noise'], owner=f'{type(self).__name__} lq_noise') \
                if opt.get('lq_noise') else None
        self.save_lq_every = opt.get('save_lq_every')
        self.realesrgan_prob = float(opt.get('realesrgan_prob') or 0)
        if self.is_train and self.realesrgan_prob:
            self.jpeger = DiffJPEG(differentiable=False).to(self.device)  # what RealESRNetModel.feed_data uses
            self.usm_sharpener = USMSharp().to(self.device)

    @torch.no_grad()
    def feed_data(self, data):
        if not self.degrade_on_feed:
            return super().feed_data(data)
        use_realesrgan = None
        if self.realesrgan_prob:
            if 'kernel1' not in data:
                raise ValueError('realesrgan_prob needs the kernels of BasicSR\'s RealESRGANDataset in the batch')
            RealESRNetModel.feed_data(self, data)  # BasicSR's own pipeline: crops self.gt, degrades into self.lq
            use_realesrgan = torch.tensor([random.random() < self.realesrgan_prob for _ in range(len(self.gt))])
            realesrgan_lq = self.lq
        else:
            self.gt = data['gt'].to(self.device)
        # BasicSR seeds `random` per rank, so each process and each iteration draws different degradations.
        out = self.degrader(self.gt, [random.getrandbits(63) for _ in range(self.gt.size(0))])
        # The Degrader returns inference-mode tensors, which autograd refuses to save: a network whose first layer
        # sees lq directly (RRDBNet's conv_first) could not backpropagate. A clone is an ordinary tensor.
        self.lq, self.lq_clean = out['lq'].clone(memory_format=torch.contiguous_format), out['lq_clean']
        self.lq_source = [self.degrader.sources[i].name for i in out['source']]
        if use_realesrgan is not None and use_realesrgan.any():
            mask = use_realesrgan.to(self.device)
            self.lq[mask] = realesrgan_lq[mask].to(self.lq.dtype)
            self.lq_source = ['realesrgan' if r else s for r, s in zip(use_realesrgan.tolist(), self.lq_source)]
        if self.noise is not None:
            self.lq = self.noise(self.lq)

    def _dequeue_and_enqueue(self):
        """Real-ESRGAN's training-pair pool, called by its feed_data: off, to keep sources per sample."""

    def optimize_parameters(self, current_iter):
        super().optimize_parameters(current_iter)
        if self.save_lq_every and current_iter % self.save_lq_every == 0 and self.opt['rank'] == 0:
            rows = [[tensor2img(t[i]) for t in (self.gt, self.lq_clean, self.lq)] for i in range(min(8, len(self.gt)))]
            save_image(osp.join(self.opt['path']['visualization'], 'train_lq', f'{current_iter}.png'),
                       image_grid(rows, labels=['gt', 'bicubic', 'degraded']))

    def nondist_validation(self, dataloader, current_iter, tb_logger, save_img):
        self.degrade_on_feed = False  # validation pairs come with their own lq
        try:
            super().nondist_validation(dataloader, current_iter, tb_logger, save_img)
        finally:
            self.degrade_on_feed = self.is_train
