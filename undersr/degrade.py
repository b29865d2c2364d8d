"""The method in one place: HR → bicubic ×s → undertrained reconstruction → degraded LR (paper §3).

:class:`Degrader` is the only implementation of the degradation; ``undersr generate``, the on-the-fly dataset and
the on-the-fly model all call it.
"""
import hashlib
import os
from dataclasses import dataclass

from undersr.checkpoint import load_reconstruction
from undersr.color import match_lab_stats
from undersr.resize import bicubic_downsample

import torch

COLOR_CORRECTIONS = ('none', 'lab-stats')


def file_sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file, for manifests."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ReconSource:
    """One (model, epoch) source of degradations."""
    path: str
    net: torch.nn.Module
    network_type: str
    epoch: int

    @property
    def name(self):
        return f'{self.network_type}@ep{self.epoch}'

    def describe(self):
        """JSON-ready description with the checkpoint's hash."""
        return {'name': self.name, 'path': os.path.abspath(self.path), 'type': self.network_type,
                'epoch': self.epoch, 'sha256': file_sha256(self.path)}


class Degrader:
    """Maps HR batches to (clean LR, degraded LR) with one or more undertrained reconstruction networks.

    Each sample draws its own source with the given probabilities from its own seed, and any randomness of the
    reconstruction (MAE with masking) also comes from that seed; no batch statistics are involved. So a sample's
    output depends only on its pixels and its seed, not on the rest of the batch.

    Args:
        recon (Sequence[str]): Reconstruction checkpoints (``net_g_ep<N>.pth`` of ``ReconstructionModel``).
        weights (Sequence[float] | None): Probabilities of the sources (normalised); default uniform.
        scale (int): Downsampling factor of the bicubic step.
        color_correct (str): ``'none'`` or ``'lab-stats'`` (match the degraded LR's per-image CIELAB mean and
            standard deviation to the clean LR's; the paper, §4.3, finds that colour shift hurts SR training).
        device (str | torch.device): Where the networks run.
    """

    def __init__(self, recon, weights=None, scale=4, color_correct='none', device='cpu'):
        if not recon:
            raise ValueError('Degrader needs at least one reconstruction checkpoint')
        if color_correct not in COLOR_CORRECTIONS:
            raise ValueError(f'color_correct must be one of {COLOR_CORRECTIONS}, got {color_correct!r}')
        weights = [1.0] * len(recon) if weights is None else [float(w) for w in weights]
        if len(weights) != len(recon) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f'need one non-negative weight per checkpoint ({len(recon)}), got {weights}')
        self.device = torch.device(device)
        self.sources = []
        for path in recon:
            net, meta = load_reconstruction(path, self.device)
            self.sources.append(ReconSource(path, net, meta['network_g']['type'], meta['epoch']))
        self.probs = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.scale = int(scale)
        self.color_correct = color_correct

    def choose(self, seeds):
        """Source index of each sample, drawn from its seed: (N,) long tensor on the CPU."""
        return torch.stack([torch.multinomial(self.probs, 1, generator=torch.Generator().manual_seed(int(s)))[0]
                            for s in seeds])

    @torch.inference_mode()
    def degrade_lr(self, lr, seeds):
        """Degrades clean LR images.

        Args:
            lr (Tensor): (N, 3, h, w) RGB in [0, 1].
            seeds (Sequence[int]): One seed per sample.

        Returns:
            dict: ``lq`` degraded LR (N, 3, h, w) on ``lr``'s device; ``lq_raw``, the same before colour
            correction (the same tensor when there is none); ``source``, the source index of each sample, (N,)
            long on the CPU.
        """
        choice = self.choose(seeds)
        out = torch.empty_like(lr)
        for index, source in enumerate(self.sources):
            members = (choice == index).nonzero().flatten().tolist()
            if not members:
                continue
            x = lr[members].to(self.device)
            if getattr(source.net, 'deterministic', True):
                y = source.net.reconstruct(x)
            else:  # stochastic reconstruction: one generator per sample keeps samples independent
                y = torch.cat([source.net.reconstruct(
                    x[i:i + 1], generator=torch.Generator(self.device).manual_seed(int(seeds[m])))
                    for i, m in enumerate(members)])
            out[members] = y.to(lr.device, lr.dtype)
        corrected = match_lab_stats(out, lr) if self.color_correct == 'lab-stats' else out
        return {'lq': corrected, 'lq_raw': out, 'source': choice}

    def __call__(self, hr, seeds):
        """HR → clean LR → degraded LR.

        Args:
            hr (Tensor): (N, 3, H, W) RGB in [0, 1], H and W divisible by ``scale``.
            seeds (Sequence[int]): One seed per sample.

        Returns:
            dict: ``lq_clean`` (the bicubic LR) and those of :meth:`degrade_lr`, images (N, 3, H/scale, W/scale)
            on ``hr``'s device.
        """
        with torch.inference_mode():
            clean = bicubic_downsample(hr, self.scale).clamp(0, 1)
        return {'lq_clean': clean, **self.degrade_lr(clean, seeds)}
