"""VQ-VAE with an EMA codebook (van den Oord et al., "Neural Discrete Representation Learning", NeurIPS 2017).

A single latent level at 1/4 resolution. The VQ-VAE-2 in :mod:`undersr.archs.vqvae2_arch` is the variant the
undersr paper (arXiv 2503.02767, §3.2) found best; this one-level model is kept for comparison.
"""
from undersr.archs.blocks import Decoder, Encoder, VQAutoencoderBase
from undersr.archs.quantize import EMAQuantizer

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class VQVAE(VQAutoencoderBase):
    """One-level VQ-VAE: encoder (x4 down), EMA vector quantiser, decoder (x4 up), sigmoid output.

    Input and output are RGB in [0, 1]; internally the image is mapped to [-1, 1].

    Args:
        in_channels (int): Image channels.
        hidden_channels (int): Encoder/decoder channels.
        res_channels (int): Channels inside the residual blocks.
        num_res_blocks (int): Residual blocks in the encoder and in the decoder.
        num_embeddings (int): Codebook size.
        embedding_dim (int): Code vector length.
        decay (float): Codebook EMA decay.
        data_init (bool): Initialise the codebook(s) from the first training batch (see
            :class:`~undersr.archs.quantize.EMAQuantizer`).
    """

    stride = 4

    def __init__(self, in_channels=3, hidden_channels=128, res_channels=32, num_res_blocks=2, num_embeddings=512,
                 embedding_dim=64, decay=0.99, data_init=True):
        super().__init__()
        self.encoder = Encoder(in_channels, hidden_channels, res_channels, num_res_blocks, num_down=2)
        self.pre_quant = nn.Conv2d(hidden_channels, embedding_dim, 1)
        self.quantizer = EMAQuantizer(num_embeddings, embedding_dim, decay, data_init=data_init)
        self.decoder = Decoder(embedding_dim, in_channels, hidden_channels, res_channels, num_res_blocks, num_up=2)

    def _quantize(self, x, update):
        z = self.pre_quant(self.encoder(x * 2 - 1))
        return self.quantizer(z, update=update)

    def _run(self, x, update):
        z_q, commit, _ = self._quantize(x, update)
        return torch.sigmoid(self.decoder(z_q)), commit

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
