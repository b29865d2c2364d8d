"""Convolutional VAE (Kingma & Welling 2014), one of the reconstruction networks of the undersr paper.

undersr paper §3.2: the network is trained on 64x64 images for only a few epochs; applied to a bicubic-downsampled
LR image, its imperfect (blurry) reconstruction serves as the realistically degraded LR.
"""
from collections import OrderedDict

from undersr.archs.arch_util import crop_to, group_norm, pad_to_multiple, randn
from undersr.archs.recon_base import ReconstructionNet

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY


class _ResBlock(nn.Module):
    """Pre-activation residual block: (GroupNorm, SiLU, 3x3 conv) x 2 plus identity. Shape-preserving."""

    def __init__(self, channels):
        super().__init__()
        self.body = nn.Sequential(
            group_norm(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            group_norm(channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


@ARCH_REGISTRY.register()
class VanillaVAE(ReconstructionNet):
    """Fully convolutional VAE with a spatial Gaussian latent.

    The encoder halves the resolution ``num_downsamples`` times (strided 4x4 convolutions, channels doubling up to
    ``max_channel_mult * hidden_channels``) and ends in two 3x3 heads for the posterior mean and log-variance of a
    ``latent_channels`` x H/stride x W/stride latent. The decoder mirrors it with transposed convolutions and ends in a
    sigmoid, so outputs lie in [0, 1]. Being fully convolutional, it accepts any H, W that are multiples of
    ``stride``; :meth:`reconstruct` pads other sizes.

    Args:
        in_channels (int): Image channels.
        hidden_channels (int): Channels after the first convolution.
        latent_channels (int): Channels of the latent.
        num_downsamples (int): Number of 2x downsamplings; ``stride = 2 ** num_downsamples``.
        max_channel_mult (int): Cap on the channel multiplier of the deeper levels.
        logvar_clamp (float): The log-variance is clamped to ``[-logvar_clamp, logvar_clamp]`` for stability.
        kl_weight (float): Weight beta of the KL term in :meth:`loss`.
    """

    def __init__(self, in_channels=3, hidden_channels=64, latent_channels=16, num_downsamples=3, max_channel_mult=4,
                 logvar_clamp=20.0, kl_weight=1e-4):
        super().__init__()
        self.kl_weight = float(kl_weight)
        self.in_channels = in_channels
        self.num_downsamples = num_downsamples
        self.logvar_clamp = float(logvar_clamp)
        chans = [hidden_channels * min(2**i, max_channel_mult) for i in range(num_downsamples + 1)]

        enc = [nn.Conv2d(in_channels, chans[0], 3, padding=1)]
        for i in range(num_downsamples):
            enc += [_ResBlock(chans[i]), group_norm(chans[i]), nn.SiLU(),
                    nn.Conv2d(chans[i], chans[i + 1], 4, stride=2, padding=1)]
        enc += [_ResBlock(chans[-1]), group_norm(chans[-1]), nn.SiLU()]
        self.encoder = nn.Sequential(*enc)
        self.mu_head = nn.Conv2d(chans[-1], latent_channels, 3, padding=1)
        self.logvar_head = nn.Conv2d(chans[-1], latent_channels, 3, padding=1)

        dec = [nn.Conv2d(latent_channels, chans[-1], 3, padding=1), _ResBlock(chans[-1])]
        for i in reversed(range(num_downsamples)):
            dec += [group_norm(chans[i + 1]), nn.SiLU(),
                    nn.ConvTranspose2d(chans[i + 1], chans[i], 4, stride=2, padding=1), _ResBlock(chans[i])]
        dec += [group_norm(chans[0]), nn.SiLU(), nn.Conv2d(chans[0], in_channels, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)

    @property
    def stride(self):
        """int: H and W must be multiples of this (``2 ** num_downsamples``)."""
        return 2**self.num_downsamples

    def encode(self, x):
        """Posterior parameters.

        Args:
            x (Tensor): Images in [0, 1], shape (N, C, H, W), H and W multiples of ``stride``.

        Returns:
            tuple[Tensor, Tensor]: ``mu`` and ``logvar``, each (N, latent_channels, H / stride, W / stride).
        """
        h = self.encoder(x * 2 - 1)
        logvar = self.logvar_head(h).clamp(-self.logvar_clamp, self.logvar_clamp)
        return self.mu_head(h), logvar

    def decode(self, z):
        """Decodes latents to images.

        Args:
            z (Tensor): Shape (N, latent_channels, h, w).

        Returns:
            Tensor: Images in [0, 1], shape (N, C, h * stride, w * stride).
        """
        return torch.sigmoid(self.decoder(z))

    @staticmethod
    def reparameterize(mu, logvar, generator=None):
        """Draws ``z = mu + sigma * eps`` with ``eps ~ N(0, I)`` (Kingma & Welling 2014, §2.4).

        Args:
            mu (Tensor): Any shape.
            logvar (Tensor): Same shape as ``mu``.
            generator (torch.Generator | None): Source of ``eps``.

        Returns:
            Tensor: Same shape as ``mu``.
        """
        eps = randn(mu.shape, generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    @staticmethod
    def kl(mu, logvar):
        """KL divergence of N(mu, exp(logvar)) to N(0, I), averaged over all elements.

        Closed form per element: ``0.5 * (mu^2 + exp(logvar) - 1 - logvar)`` (Kingma & Welling 2014, App. B).
        :meth:`loss` weights it with ``kl_weight`` (beta).

        Args:
            mu (Tensor): Any shape.
            logvar (Tensor): Same shape as ``mu``.

        Returns:
            Tensor: Scalar, >= 0.
        """
        mu = mu.float()
        logvar = logvar.float()
        return 0.5 * torch.mean(mu.pow(2) + logvar.exp() - 1.0 - logvar)

    def forward(self, x, generator=None):
        """Training pass: encode, sample the latent with the reparameterisation trick, decode.

        In eval mode the posterior mean is decoded instead of a sample.

        Args:
            x (Tensor): Images in [0, 1], shape (N, C, H, W), H and W multiples of ``stride``.
            generator (torch.Generator | None): Source of the latent noise.

        Returns:
            dict: ``'recon'`` (N, C, H, W) in [0, 1]; ``'mu'`` and ``'logvar'`` (N, latent_channels, H / stride,
            W / stride).
        """
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar, generator) if self.training else mu
        return {'recon': self.decode(z), 'mu': mu, 'logvar': logvar}

    def loss(self, x, out):
        """The beta-weighted evidence lower bound: reconstruction MSE plus ``kl_weight`` times the KL term.

        Args:
            x (Tensor): (N, C, H, W) input batch in [0, 1].
            out (dict): What :meth:`forward` returned for ``x``.

        Returns:
            OrderedDict[str, Tensor]: ``l_recon`` and ``l_kl``.
        """
        return OrderedDict(l_recon=F.mse_loss(out['recon'], x), l_kl=self.kl_weight * self.kl(out['mu'], out['logvar']))

    @torch.no_grad()
    def reconstruct(self, x, generator=None):
        """Deterministic reconstruction of images of any size: decodes the posterior mean.

        Args:
            x (Tensor): Images in [0, 1], shape (N, C, H, W), any H and W.
            generator (torch.Generator | None): Unused (the result is deterministic); kept for the common interface.

        Returns:
            Tensor: Reconstruction in [0, 1], shape (N, C, H, W).
        """
        xp, size = pad_to_multiple(x, self.stride)
        mu, _ = self.encode(xp)
        return crop_to(self.decode(mu), size).clamp(0, 1)
