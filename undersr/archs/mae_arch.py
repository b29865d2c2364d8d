"""Masked autoencoder (He et al., "Masked Autoencoders Are Scalable Vision Learners", CVPR 2022).

One of the reconstruction networks of the undersr paper (§3.2). Trained only briefly, its reconstruction of a
bicubic-downsampled LR image is used as the degraded LR.
"""
from collections import OrderedDict

from undersr.archs.arch_util import crop_to, pad_to_multiple, rand, sincos_pos_embed_2d
from undersr.archs.recon_base import ReconstructionNet

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY


class _Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)), then x + MLP(LN(x)).

    Args:
        dim (int): Token width.
        num_heads (int): Attention heads; must divide ``dim``.
        mlp_ratio (float): MLP hidden width relative to ``dim``.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f'MAE: width {dim} is not divisible by num_heads {num_heads}')
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x):
        """Args: x (Tensor): (N, T, dim). Returns: Tensor: (N, T, dim)."""
        n, t, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(n, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2])
        x = x + self.proj(attn.transpose(1, 2).reshape(n, t, d))
        return x + self.mlp(self.norm2(x))


def _check_ratio(name, ratio):
    """Returns ``ratio`` if it is a valid mask ratio, in [0, 1); raises ValueError naming ``name`` otherwise."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f'MAE: {name} must be in [0, 1), got {ratio}')
    return ratio


@ARCH_REGISTRY.register()
class MAE(ReconstructionNet):
    """ViT masked autoencoder with fixed 2-D sine-cosine positional embeddings.

    The encoder embeds non-overlapping ``patch_size`` patches with a strided convolution, adds positional
    embeddings, drops a random ``mask_ratio`` of the patches per sample and runs the transformer only on the visible
    ones. The decoder projects them to ``decoder_embed_dim``, fills the masked positions with a shared learned mask
    token, adds its own positional embeddings and predicts the pixels of every patch. Unlike the original MAE there
    is no class token (it is not needed for reconstruction) and positional embeddings are computed for the actual
    patch grid, so any H, W that are multiples of ``patch_size`` work; :meth:`reconstruct` pads other sizes.

    Pixels are predicted in the [0, 1] input scale (or per-patch normalised when ``norm_pix_loss``); the encoder
    sees the input mapped to [-1, 1].

    Args:
        img_size (int): Informational only: the paper trains the MAE on 224x224 images. Nothing in the
            network depends on it.
        patch_size (int): Patch side ``p``; ``stride = p``.
        in_channels (int): Image channels ``C``.
        embed_dim (int): Encoder width (multiple of 4 for the 2-D sine-cosine embedding).
        depth (int): Encoder blocks.
        num_heads (int): Encoder attention heads.
        decoder_embed_dim (int): Decoder width (multiple of 4).
        decoder_depth (int): Decoder blocks.
        decoder_num_heads (int): Decoder attention heads.
        mlp_ratio (float): MLP hidden width relative to the block width.
        mask_ratio (float): Fraction of patches masked in training (:meth:`forward`).
        recon_mask_ratio (float): Fraction of patches masked in :meth:`reconstruct` (0.0: every patch visible, the
            output is deterministic; > 0: the result depends on the random mask and is deterministic given a seeded
            ``generator``). It is what validation during training uses. The :class:`~undersr.degrade.Degrader`
            overrides it with its own ``recon_mask_ratio`` option, whose default masks as in training (the paper's
            MAE "reconstructs the whole image, not only the masked patches", §3.2; see docs/paper-choices.md).
        norm_pix_loss (bool): If True the targets are per-patch normalised pixels (He et al. 2022); predictions
            are then de-normalised with the input patches' statistics to form images.
    """

    def __init__(self, img_size=224, patch_size=16, in_channels=3, embed_dim=192, depth=4, num_heads=3,
                 decoder_embed_dim=128, decoder_depth=2, decoder_num_heads=4, mlp_ratio=4.0, mask_ratio=0.75,
                 recon_mask_ratio=0.0, norm_pix_loss=False):
        super().__init__()
        for name, dim in (('embed_dim', embed_dim), ('decoder_embed_dim', decoder_embed_dim)):
            if dim % 4:
                raise ValueError(f'MAE: {name} must be a multiple of 4 for the 2-D sin-cos embedding, got {dim}')
        for name, ratio in (('mask_ratio', mask_ratio), ('recon_mask_ratio', recon_mask_ratio)):
            _check_ratio(name, ratio)
        self.img_size = img_size
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.embed_dim = embed_dim
        self.decoder_embed_dim = decoder_embed_dim
        self.mask_ratio = float(mask_ratio)
        self.recon_mask_ratio = float(recon_mask_ratio)
        self.norm_pix_loss = norm_pix_loss

        self.patch_embed = nn.Conv2d(in_channels, embed_dim, patch_size, stride=patch_size)
        self.blocks = nn.ModuleList(_Block(embed_dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)

        self.decoder_embed = nn.Linear(embed_dim, decoder_embed_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_embed_dim))
        self.decoder_blocks = nn.ModuleList(
            _Block(decoder_embed_dim, decoder_num_heads, mlp_ratio) for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_embed_dim)
        self.decoder_pred = nn.Linear(decoder_embed_dim, patch_size * patch_size * in_channels)
        self._init_weights()

    def _init_weights(self):
        # He et al. 2022 (official code): xavier-uniform linears, patch embedding initialised like a linear layer.
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        nn.init.xavier_uniform_(self.patch_embed.weight.view(self.embed_dim, -1))
        nn.init.zeros_(self.patch_embed.bias)
        nn.init.normal_(self.mask_token, std=0.02)

    def set_recon_mask_ratio(self, ratio):
        """Sets the fraction of patches that :meth:`reconstruct` masks (``Degrader(recon_mask_ratio=...)``).

        Raises:
            ValueError: ``ratio`` is not in [0, 1).
        """
        self.recon_mask_ratio = _check_ratio('recon_mask_ratio', float(ratio))

    @property
    def stride(self):
        """int: H and W must be multiples of this (the patch size)."""
        return self.patch_size

    @property
    def deterministic(self):
        """bool: :meth:`reconstruct` draws no random numbers (nothing is masked)."""
        return self.recon_mask_ratio == 0

    def patchify(self, imgs):
        """Splits images into flattened patches.

        Args:
            imgs (Tensor): (N, C, H, W), H and W multiples of ``p``.

        Returns:
            Tensor: (N, L, p * p * C) with L = (H / p) * (W / p) in row-major patch order; each patch is flattened
            as (p, p, C).
        """
        n, c, h, w = imgs.shape
        p = self.patch_size
        x = imgs.reshape(n, c, h // p, p, w // p, p)
        return x.permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), p * p * c)

    def unpatchify(self, patches, grid):
        """Inverse of :meth:`patchify`.

        Args:
            patches (Tensor): (N, L, p * p * C).
            grid (tuple[int, int]): Patch grid ``(H / p, W / p)`` with product L.

        Returns:
            Tensor: (N, C, H, W).
        """
        gh, gw = grid
        p = self.patch_size
        n = patches.shape[0]
        c = patches.shape[-1] // (p * p)
        x = patches.reshape(n, gh, gw, p, p, c).permute(0, 5, 1, 3, 2, 4)
        return x.reshape(n, c, gh * p, gw * p)

    @staticmethod
    def random_masking(num_patches, batch, mask_ratio, generator=None, device=None):
        """Per-sample random masking by sorting uniform noise (He et al. 2022, official implementation).

        ``int(L * (1 - mask_ratio))`` patches are kept (at least one). With nothing to mask the identity order is
        returned, so no randomness is consumed.

        Args:
            num_patches (int): Patches per image L.
            batch (int): Batch size N.
            mask_ratio (float): Fraction to mask, in [0, 1).
            generator (torch.Generator | None): Random source.
            device (torch.device | None): Device of the results.

        Returns:
            tuple[Tensor, Tensor, Tensor]: ``ids_keep`` (N, L_keep) indices of the visible patches, ``ids_restore``
            (N, L) that undoes the shuffle, and ``mask`` (N, L) float with 1 = masked, 0 = visible.
        """
        len_keep = max(1, int(num_patches * (1.0 - mask_ratio)))
        if len_keep >= num_patches:
            ids = torch.arange(num_patches, device=device).expand(batch, -1)
            return ids, ids, torch.zeros(batch, num_patches, device=device)
        noise = rand((batch, num_patches), generator, device=device)
        ids_shuffle = torch.argsort(noise, dim=1)
        ids_restore = torch.argsort(ids_shuffle, dim=1)
        mask = torch.ones(batch, num_patches, device=device)
        mask[:, :len_keep] = 0
        mask = torch.gather(mask, 1, ids_restore)
        return ids_shuffle[:, :len_keep], ids_restore, mask

    def _run(self, x, mask_ratio, generator=None):
        """Encodes the visible patches and decodes every patch.

        Args:
            x (Tensor): Images in [0, 1], (N, C, H, W), H and W multiples of ``p``.
            mask_ratio (float): Fraction of patches to mask.
            generator (torch.Generator | None): Random source for the mask.

        Returns:
            tuple[Tensor, Tensor, tuple[int, int]]: ``pred`` (N, L, p * p * C) for every patch, ``mask`` (N, L) with
            1 = masked, and the patch grid.
        """
        n, _, h, w = x.shape
        p = self.patch_size
        if h % p or w % p:
            raise ValueError(f'MAE: input size {h}x{w} is not a multiple of the patch size {p}')
        grid = (h // p, w // p)
        num_patches = grid[0] * grid[1]

        tokens = self.patch_embed(x * 2 - 1).flatten(2).transpose(1, 2)  # (N, L, D)
        pos = sincos_pos_embed_2d(self.embed_dim, *grid, device=x.device)
        tokens = tokens + pos.to(tokens.dtype)[None]

        ids_keep, ids_restore, mask = self.random_masking(num_patches, n, mask_ratio, generator, x.device)
        if ids_keep.shape[1] < num_patches:
            tokens = torch.gather(tokens, 1, ids_keep[..., None].expand(-1, -1, tokens.shape[-1]))
        for blk in self.blocks:
            tokens = blk(tokens)
        tokens = self.decoder_embed(self.norm(tokens))  # (N, L_keep, D_dec)

        num_masked = num_patches - tokens.shape[1]
        if num_masked:
            fill = self.mask_token.to(tokens.dtype).expand(n, num_masked, -1)
            tokens = torch.cat([tokens, fill], dim=1)
            tokens = torch.gather(tokens, 1, ids_restore[..., None].expand(-1, -1, tokens.shape[-1]))
        dec_pos = sincos_pos_embed_2d(self.decoder_embed_dim, *grid, device=x.device)
        tokens = tokens + dec_pos.to(tokens.dtype)[None]
        for blk in self.decoder_blocks:
            tokens = blk(tokens)
        pred = self.decoder_pred(self.decoder_norm(tokens))
        return pred, mask, grid

    def _to_pixels(self, pred, x):
        """Turns predictions into pixel patches (undoes the per-patch normalisation of ``norm_pix_loss``)."""
        if not self.norm_pix_loss:
            return pred
        target = self.patchify(x)
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        return pred * (var + 1e-6).sqrt() + mean

    def forward(self, x, generator=None):
        """Training pass with ``mask_ratio``.

        Args:
            x (Tensor): Images in [0, 1], (N, C, H, W), H and W multiples of ``patch_size``.
            generator (torch.Generator | None): Random source for the mask.

        Returns:
            dict: ``'pred'`` (N, L, p * p * C), the decoder output for every patch; ``'target'`` (N, L, p * p * C),
            the input patches (per-patch normalised when ``norm_pix_loss``); ``'mask'`` (N, L), 1 = masked (the MAE
            loss averages the per-patch error over masked patches); ``'recon'`` (N, C, H, W), ``pred`` as an image
            (de-normalised when ``norm_pix_loss``, not clamped).
        """
        pred, mask, grid = self._run(x, self.mask_ratio, generator)
        target = self.patchify(x)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        recon = self.unpatchify(self._to_pixels(pred, x), grid)
        return {'pred': pred, 'target': target, 'mask': mask, 'recon': recon}

    def loss(self, x, out):
        """MAE's objective (He et al. 2022, §3): per-patch MSE, averaged over the masked patches only.

        Args:
            x (Tensor): (N, C, H, W) input batch in [0, 1].
            out (dict): What :meth:`forward` returned for ``x``.

        Returns:
            OrderedDict[str, Tensor]: ``l_mae``.
        """
        per_patch = (out['pred'] - out['target']).pow(2).mean(dim=-1)  # (N, L)
        return OrderedDict(l_mae=(per_patch * out['mask']).sum() / out['mask'].sum().clamp(min=1))

    @torch.no_grad()
    def reconstruct(self, x, generator=None):
        """Reconstructs images of any size with ``recon_mask_ratio``.

        undersr paper §3.2: MAE reconstructs the whole image, so the whole decoder output is returned; visible input
        patches are NOT pasted back.

        Args:
            x (Tensor): Images in [0, 1], (N, C, H, W), any H and W.
            generator (torch.Generator | None): Random source for the mask (only used if ``recon_mask_ratio > 0``).

        Returns:
            Tensor: Reconstruction in [0, 1], (N, C, H, W).
        """
        xp, size = pad_to_multiple(x, self.stride)
        pred, _, grid = self._run(xp, self.recon_mask_ratio, generator)
        out = self.unpatchify(self._to_pixels(pred, xp), grid)
        return crop_to(out, size).clamp(0, 1)
