"""VQ-VAE-2 (Razavi et al., "Generating Diverse High-Fidelity Images with VQ-VAE-2", NeurIPS 2019).

The undersr paper (arXiv 2503.02767, §3.2) degrades HR images by reconstructing them with an undertrained
VQ-VAE-2; the checkpoint after 8 epochs gave the best degradations. With the defaults this model has about
1.4 M parameters, like the paper's reference model.
"""
from undersr.archs.blocks import Decoder, Encoder, VQAutoencoderBase

import torch
from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


@ARCH_REGISTRY.register()
class VQVAE2(VQAutoencoderBase):
    """Two-level VQ-VAE: a top code at 1/8 resolution conditions a bottom code at 1/4 resolution.

    Arguments, loss and I/O conventions: :class:`~undersr.archs.blocks.VQAutoencoderBase`.
    """

    stride = 8

    def _build(self, in_channels, hidden_channels, res_channels, num_res_blocks, embedding_dim):
        blocks = (res_channels, num_res_blocks)
        # Razavi et al. 2019, §3.1: bottom encoder x4 down, top encoder a further x2 down.
        self.encoder_bottom = Encoder(in_channels, hidden_channels, *blocks, num_down=2)
        self.encoder_top = Encoder(hidden_channels, hidden_channels, *blocks, num_down=1)
        self.pre_quant_top = nn.Conv2d(hidden_channels, embedding_dim, 1)
        self.quantizer_top = self._quantizer()
        # The top code, decoded x2 up, conditions the bottom latent (concatenated with the bottom features).
        self.decoder_top = Decoder(embedding_dim, embedding_dim, hidden_channels, *blocks, num_up=1)
        self.pre_quant_bottom = nn.Conv2d(embedding_dim + hidden_channels, embedding_dim, 1)
        self.quantizer_bottom = self._quantizer()
        # The image decoder sees both codes: the top one upsampled x2, concatenated with the bottom one.
        self.upsample_top = nn.ConvTranspose2d(embedding_dim, embedding_dim, 4, stride=2, padding=1)
        self.decoder = Decoder(2 * embedding_dim, in_channels, hidden_channels, *blocks, num_up=2)

    def _quantize(self, x, update):
        """Both codes of an image.

        Args:
            x (Tensor): (N, 3, H, W) in [0, 1], H and W multiples of 8.
            update (bool): Whether the quantisers take an EMA step.

        Returns:
            tuple: ``(q_top, q_bottom, commit, idx_top, idx_bottom)``: quantised latents (N, D, H/8, W/8) and
            (N, D, H/4, W/4), the summed commitment loss (), and indices (N, H/8, W/8) and (N, H/4, W/4).
        """
        feat_bottom = self.encoder_bottom(x * 2 - 1)
        feat_top = self.encoder_top(feat_bottom)
        q_top, commit_top, idx_top = self.quantizer_top(self.pre_quant_top(feat_top), update=update)
        z_bottom = self.pre_quant_bottom(torch.cat([self.decoder_top(q_top), feat_bottom], 1))
        q_bottom, commit_bottom, idx_bottom = self.quantizer_bottom(z_bottom, update=update)
        return q_top, q_bottom, commit_top + commit_bottom, idx_top, idx_bottom

    def _run(self, x, update):
        q_top, q_bottom, commit, _, _ = self._quantize(x, update)
        return self.decoder(torch.cat([self.upsample_top(q_top), q_bottom], 1)), commit

    @torch.no_grad()
    def encode(self, x):
        """Code indices of both levels, without updating the codebooks.

        Args:
            x (Tensor): (N, 3, H, W) in [0, 1], H and W multiples of 8.

        Returns:
            tuple[Tensor, Tensor]: top (N, H / 8, W / 8) and bottom (N, H / 4, W / 4) long indices.
        """
        self._check_size(x)
        _, _, _, idx_top, idx_bottom = self._quantize(x, update=False)
        return idx_top, idx_bottom
