"""Helpers shared by the reconstruction networks of ``undersr.archs``.

The file name has no ``_arch`` suffix, so the registry scan of ``undersr/archs/__init__.py`` does not import it as an
architecture module. Import from it directly, e.g. ``from undersr.archs.arch_util import pad_to_multiple``.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


def group_norm(channels, max_groups=32):
    """GroupNorm with the largest group count <= ``max_groups`` that divides ``channels``.

    Args:
        channels (int): Channels to normalise.
        max_groups (int): Upper bound on the number of groups.

    Returns:
        nn.GroupNorm: The normalisation layer (affine, eps 1e-6).
    """
    groups = max(1, min(max_groups, channels))
    while channels % groups:
        groups -= 1
    return nn.GroupNorm(groups, channels, eps=1e-6)


def pad_to_multiple(x, multiple):
    """Pads an image batch on the bottom and right so that H and W become multiples of ``multiple``.

    Reflect padding is used where PyTorch allows it (the pad must be smaller than the dimension it pads);
    otherwise, e.g. for tiny images, replicate padding is used.

    Args:
        x (Tensor): Images, shape (N, C, H, W).
        multiple (int): Target multiple for H and W (>= 1).

    Returns:
        tuple[Tensor, tuple[int, int]]: The padded images, shape (N, C, H', W') with H' and W' the smallest multiples
        of ``multiple`` that are >= H and W, and the original size ``(H, W)`` for cropping back with
        ``crop_to(y, size)``. When no padding is needed, ``x`` itself is returned.
    """
    multiple = int(multiple)
    if multiple < 1:
        raise ValueError(f'pad_to_multiple: multiple must be >= 1, got {multiple}')
    h, w = x.shape[-2:]
    pad_h = (-h) % multiple
    pad_w = (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x, (h, w)
    mode = 'reflect' if pad_h < h and pad_w < w else 'replicate'
    # F.pad's order is (left, right, top, bottom) for the last two dimensions.
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode), (h, w)


def crop_to(x, size):
    """Crops the bottom/right padding added by :func:`pad_to_multiple`.

    Args:
        x (Tensor): Images, shape (N, C, H', W').
        size (tuple[int, int]): Original ``(H, W)``.

    Returns:
        Tensor: Shape (N, C, H, W).
    """
    h, w = size
    return x[..., :h, :w]


def timestep_embedding(timesteps, dim, max_period=10000.0):
    """Sinusoidal embedding of (possibly fractional) diffusion timesteps (Vaswani et al. 2017; Ho et al. 2020).

    Args:
        timesteps (Tensor): Shape (N,), integer or float.
        dim (int): Embedding width.
        max_period (float): Longest wavelength.

    Returns:
        Tensor: Shape (N, dim), float32, on ``timesteps.device``.
    """
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / max(half, 1)
    args = timesteps.float()[:, None] * torch.exp(exponent)[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


def sincos_pos_embed_1d(dim, positions):
    """1-D sine-cosine embedding of positions.

    Args:
        dim (int): Embedding width, even.
        positions (Tensor): Shape (M,), float.

    Returns:
        Tensor: Shape (M, dim), float32: ``dim/2`` sines followed by ``dim/2`` cosines.
    """
    if dim % 2:
        raise ValueError(f'sincos_pos_embed_1d: dim must be even, got {dim}')
    omega = torch.arange(dim // 2, dtype=torch.float32, device=positions.device) / (dim / 2.0)
    omega = 1.0 / 10000.0**omega
    out = positions.float()[:, None] * omega[None]
    return torch.cat([torch.sin(out), torch.cos(out)], dim=1)


def sincos_pos_embed_2d(dim, grid_h, grid_w, device=None):
    """Fixed 2-D sine-cosine positional embedding for a ``grid_h`` x ``grid_w`` patch grid (as in MAE).

    Half of the channels encode the row index, the other half the column index.

    Args:
        dim (int): Embedding width, a multiple of 4.
        grid_h (int): Patch rows.
        grid_w (int): Patch columns.
        device (torch.device | None): Device of the result.

    Returns:
        Tensor: Shape (grid_h * grid_w, dim), float32, patches in row-major order.
    """
    if dim % 4:
        raise ValueError(f'sincos_pos_embed_2d: dim must be a multiple of 4, got {dim}')
    rows = torch.arange(grid_h, dtype=torch.float32, device=device)
    cols = torch.arange(grid_w, dtype=torch.float32, device=device)
    rr, cc = torch.meshgrid(rows, cols, indexing='ij')
    emb_r = sincos_pos_embed_1d(dim // 2, rr.reshape(-1))
    emb_c = sincos_pos_embed_1d(dim // 2, cc.reshape(-1))
    return torch.cat([emb_r, emb_c], dim=1)


def _draw_device(generator, device):
    """Device to draw random numbers on: a generator can only fill tensors on its own device."""
    return generator.device if generator is not None else device


def randn(shape, generator=None, device=None, dtype=torch.float32):
    """Standard-normal tensor; reproducible with ``generator`` even if it lives on another device than ``device``.

    Args:
        shape (tuple[int, ...]): Output shape.
        generator (torch.Generator | None): Random source; the global one if None.
        device (torch.device | None): Device of the result.
        dtype (torch.dtype): Floating dtype of the result.

    Returns:
        Tensor: Shape ``shape`` on ``device``.
    """
    out = torch.randn(shape, generator=generator, device=_draw_device(generator, device), dtype=dtype)
    return out.to(device)


def rand(shape, generator=None, device=None, dtype=torch.float32):
    """Uniform [0, 1) tensor; see :func:`randn` for the arguments."""
    out = torch.rand(shape, generator=generator, device=_draw_device(generator, device), dtype=dtype)
    return out.to(device)


def randint(high, shape, generator=None, device=None):
    """Integer tensor uniform in ``[0, high)``, dtype int64; see :func:`randn` for the other arguments."""
    out = torch.randint(high, shape, generator=generator, device=_draw_device(generator, device))
    return out.to(device)
