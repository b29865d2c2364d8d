"""VQ-VAE with an EMA codebook (van den Oord et al., "Neural Discrete Representation Learning", NeurIPS 2017).

A single latent level at 1/4 resolution. The VQ-VAE-2 in :mod:`undersr.archs.vqvae2_arch` is the variant the
undersr paper (arXiv 2503.02767, §3.2) found best; this one-level model is kept for comparison.
"""
from undersr.archs.blocks import Decoder, Encoder, VQAutoencoderBase

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class VQVAE(VQAutoencoderBase):
    """One-level VQ-VAE: encoder (x4 down), EMA vector quantiser, decoder (x4 up).

    Arguments, loss and I/O conventions: :class:`~undersr.archs.blocks.VQAutoencoderBase`.
    """

    stride = 4

    def _build(self, in_channels, hidden_channels, res_channels, num_res_blocks, embedding_dim):
        self.encoder = Encoder(in_channels, hidden_channels, res_channels, num_res_blocks, num_down=2)
        self.pre_quant = nn.Conv2d(hidden_channels, embedding_dim, 1)
        self.quantizer = self._quantizer()
        self.decoder = Decoder(embedding_dim, in_channels, hidden_channels, res_channels, num_res_blocks, num_up=2)

    def _quantize(self, x, update):
        z = self.pre_quant(self.encoder(x * 2 - 1))
        return self.quantizer(z, update=update)

    def _run(self, x, update):
        z_q, commit, _ = self._quantize(x, update)
        return self.decoder(z_q), commit

    @torch.no_grad()
    def encode(self, x):
        """Code indices of an image, without updating the codebook.

        Args:
            x (Tensor): (N, 3, H, W) in [0, 1], H and W multiples of 4.

        Returns:
            Tensor: (N, H / 4, W / 4) long indices.
        """
        self._check_size(x)
        return self._quantize(x, update=False)[2]
