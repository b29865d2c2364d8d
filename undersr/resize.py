"""MATLAB-compatible bicubic resizing in PyTorch, batched and on any device.

The SR community makes its LR images with MATLAB's ``imresize(img, scale, 'bicubic')`` (in Python usually through
BasicSR's NumPy port ``basicsr.utils.matlab_functions.imresize``). The paper's pipeline starts with exactly that
step: HR → bicubic ×4 → undertrained reconstruction network → degraded LR (arXiv 2503.02767, §3). The NumPy port
loops over output rows and channels of one image at a time; this module computes the same numbers for a whole
batch with two matrix products.

The resampling, written out
---------------------------
For one axis with ``n`` input and ``m`` output samples and scale ``s`` (``m = ceil(n * s)``), output sample ``i``
(0-based) is centred at the input coordinate ``c_i = (i + 0.5) / s - 0.5`` (pixel centres sit at integers and the
outer pixel edges of input and output line up). It is the weighted sum of input samples ``j`` near ``c_i``:

* the cubic convolution kernel with ``a = -0.5`` (Keys), ``k(t) = 1.5|t|³ - 2.5|t|² + 1`` for ``|t| ≤ 1``,
  ``-0.5|t|³ + 2.5|t|² - 4|t| + 2`` for ``1 < |t| ≤ 2`` and 0 beyond;
* when downscaling (``s < 1``) the kernel is stretched to antialias: ``h(t) = s·k(s·t)``, so its support grows
  from 4 to ``4 / s`` input samples; when upscaling ``h = k``;
* the taps are ``j = floor(c_i - w/2) + 0, 1, ..., ceil(w) + 1`` for the support width ``w``; their weights
  ``h(c_i - j)`` are divided by their sum so that every output row of weights sums to one;
* taps outside ``[0, n)`` read the mirror image of the input that repeats the edge sample (MATLAB's
  ``'symmetric'`` padding: index ``-1`` reads sample ``0``, index ``n`` reads sample ``n - 1``).

Because every output sample is linear in the input, the whole axis is the product with an ``(m, n)`` matrix whose
rows hold the weights (mirrored taps add up in the column they read). Resizing an image is then
``W_h @ x @ W_wᵀ``. The matrices are built once, in float64, and cached per size, scale, device and dtype.
"""
import functools
import math
from typing import Tuple

from undersr.image_io import to_uint8

import numpy as np
import torch

__all__ = ['imresize', 'bicubic_downsample']

_KERNEL_SUPPORT = 4.0  # the cubic kernel is non-zero on (-2, 2)


def _cubic(t: torch.Tensor) -> torch.Tensor:
    """Keys' cubic convolution kernel with ``a = -0.5`` (the one MATLAB's ``'bicubic'`` uses).

    Args:
        t: Distances, any shape.

    Returns:
        Kernel values, same shape as ``t``.
    """
    at = t.abs()
    at2 = at * at
    at3 = at2 * at
    inner = 1.5 * at3 - 2.5 * at2 + 1.0
    outer = -0.5 * at3 + 2.5 * at2 - 4.0 * at + 2.0
    return torch.where(at <= 1.0, inner, torch.where(at <= 2.0, outer, torch.zeros_like(at)))


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    """Maps any integer index into ``[0, size)`` by half-sample symmetric reflection (edge sample repeated).

    The reflected signal has period ``2 * size``: ``..., x1, x0 | x0, x1, ..., x(n-1) | x(n-1), ...``.

    Args:
        index: Integer tensor of indices, any shape, possibly negative or ``>= size``.
        size: Length of the signal.

    Returns:
        Indices into the signal, same shape as ``index``.
    """
    period = index.remainder(2 * size)
    return torch.where(period < size, period, 2 * size - 1 - period)


@functools.lru_cache(maxsize=64)
def _weight_matrix_cpu(in_size: int, out_size: int, scale: float, antialiasing: bool) -> torch.Tensor:
    """The ``(out_size, in_size)`` float64 resampling matrix of one axis, on CPU (see the module docstring).

    Args:
        in_size: Number of input samples ``n``.
        out_size: Number of output samples ``m``.
        scale: Scale factor ``s`` used for the coordinate mapping and the kernel width.
        antialiasing: Whether to widen the kernel by ``1 / s`` when ``s < 1``.

    Returns:
        Tensor of shape (out_size, in_size), float64, rows summing to one.
    """
    widen = antialiasing and scale < 1
    width = _KERNEL_SUPPORT / scale if widen else _KERNEL_SUPPORT
    centres = (torch.arange(out_size, dtype=torch.float64) + 0.5) / scale - 0.5  # (m,)
    first = torch.floor(centres - width / 2)  # (m,)
    num_taps = math.ceil(width) + 2
    taps = first[:, None] + torch.arange(num_taps, dtype=torch.float64)[None, :]  # (m, taps)
    distance = centres[:, None] - taps
    weights = scale * _cubic(scale * distance) if widen else _cubic(distance)
    weights = weights / weights.sum(dim=1, keepdim=True)

    rows = torch.arange(out_size)[:, None].expand(-1, num_taps)
    cols = _mirror(taps.long(), in_size)
    matrix = torch.zeros(out_size, in_size, dtype=torch.float64)
    matrix.index_put_((rows.reshape(-1), cols.reshape(-1)), weights.reshape(-1), accumulate=True)
    return matrix


@functools.lru_cache(maxsize=128)
def _weight_matrix(in_size: int, out_size: int, scale: float, antialiasing: bool, device: torch.device,
                   dtype: torch.dtype) -> torch.Tensor:
    """:func:`_weight_matrix_cpu` converted to ``dtype`` and moved to ``device`` once, then reused.

    Returns:
        Tensor of shape (out_size, in_size).
    """
    return _weight_matrix_cpu(in_size, out_size, scale, antialiasing).to(device=device, dtype=dtype)


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; float32 and the half types are resized in float32 (then cast back)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _resize(x: torch.Tensor, out_hw: Tuple[int, int], scale_hw: Tuple[float, float],
            antialiasing: bool) -> torch.Tensor:
    """Resizes the last two axes of ``x`` to ``out_hw`` with the separable MATLAB bicubic matrices.

    Args:
        x: Float tensor of shape (*, H, W).
        out_hw: Output size (out_H, out_W).
        scale_hw: Scale factors of the two axes, used for the weights.
        antialiasing: Whether to antialias when downscaling.

    Returns:
        Tensor of shape (*, out_H, out_W), same dtype and device as ``x``.
    """
    if not torch.is_floating_point(x):
        raise TypeError(f'imresize needs a floating-point tensor, got {x.dtype}; convert it first, e.g. '
                        'x.float() / 255')
    if x.dim() < 2:
        raise ValueError(f'imresize needs a tensor of shape (..., H, W), got shape {tuple(x.shape)}')
    (in_h, in_w), (out_h, out_w) = x.shape[-2:], out_hw
    if min(in_h, in_w, out_h, out_w) < 1:
        raise ValueError(f'cannot resize {in_h}×{in_w} to {out_h}×{out_w}: every size must be at least 1')
    dtype = _compute_dtype(x.dtype)
    w_h = _weight_matrix(in_h, out_h, scale_hw[0], antialiasing, x.device, dtype)  # (out_H, H)
    w_w = _weight_matrix(in_w, out_w, scale_hw[1], antialiasing, x.device, dtype)  # (out_W, W)
    y = x.to(dtype)
    # Both orders give the same result up to rounding; take the one with fewer multiply-adds.
    cost_h_first = out_h * in_w * (in_h + out_w)
    cost_w_first = in_h * out_w * (in_w + out_h)
    if cost_h_first <= cost_w_first:
        y = torch.matmul(torch.matmul(w_h, y), w_w.t())
    else:
        y = torch.matmul(w_h, torch.matmul(y, w_w.t()))
    return y.to(x.dtype)


def imresize(x: torch.Tensor, scale: float, antialiasing: bool = True) -> torch.Tensor:
    """MATLAB ``imresize(x, scale, 'bicubic')`` for a batch of images, on the device of ``x``.

    Gives the same numbers as ``basicsr.utils.matlab_functions.imresize`` (up to float32 rounding): cubic kernel
    with ``a = -0.5``, kernel widened by ``1 / scale`` when downscaling (antialiasing), symmetric borders, and
    output size ``ceil(in_size * scale)`` per axis. Values are not clipped or rounded, so any range works.

    Args:
        x: Float tensor of shape (N, C, H, W) or (C, H, W) (in general (*, H, W)); the last two axes are
            resized. float16/bfloat16 inputs are resized in float32 and cast back.
        scale: Scale factor (> 0) for both height and width, e.g. ``1 / 4`` to make ×4 LR images.
        antialiasing: Widen the kernel when downscaling, as MATLAB does by default.

    Returns:
        Tensor of shape (N, C, ceil(H * scale), ceil(W * scale)) (same leading axes as ``x``), with the dtype
        and device of ``x``.

    Raises:
        TypeError: If ``x`` is not a floating-point tensor.
        ValueError: If ``scale`` is not positive or a size would become 0.
    """
    scale = float(scale)
    if not scale > 0 or math.isinf(scale):
        raise ValueError(f'scale must be a positive finite number, got {scale}')
    in_h, in_w = x.shape[-2:] if x.dim() >= 2 else (0, 0)
    out_hw = (math.ceil(in_h * scale), math.ceil(in_w * scale))
    return _resize(x, out_hw, (scale, scale), antialiasing)


def bicubic_downsample(hr, scale):
    """Bicubic (MATLAB) downscaling by an integer factor: HR (N, C, H, W) → LR (N, C, H / scale, W / scale).

    This is the clean-LR step of the paper's pipeline (§3, HR → bicubic ×4). The output size is exactly
    ``H // scale`` × ``W // scale``, computed in integers, so it never suffers from ``ceil`` of a rounded product.
    A NumPy image (H, W, C) is accepted too, as OpenCV and scikit-image hold them: uint8 in, uint8 out (rounded
    and clipped), float in [0, 1] in, float32 out (clipped to [0, 1]).

    Args:
        hr (Tensor | ndarray): Float tensor of shape (N, C, H, W) or (C, H, W), any range; or an (H, W, C)
            uint8 or float array.
        scale (int): Integer downscale factor ``>= 1`` (e.g. 4).

    Returns:
        Tensor | ndarray: Shape (N, C, H // scale, W // scale), same dtype and device as ``hr``; for an array,
        (H // scale, W // scale, C) as described above.

    Raises:
        ValueError: If ``scale`` is not a positive integer or H or W is not divisible by it.
    """
    if isinstance(hr, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(hr, dtype=np.float32)).permute(2, 0, 1)
        if hr.dtype == np.uint8:
            return to_uint8(bicubic_downsample(x / 255., scale).permute(1, 2, 0).numpy())
        return bicubic_downsample(x, scale).clamp(0, 1).permute(1, 2, 0).numpy()
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ValueError(f'scale must be a positive integer, got {scale!r}')
    scale = int(scale)
    if hr.dim() < 2:
        raise ValueError(f'bicubic_downsample needs a tensor of shape (..., H, W), got shape {tuple(hr.shape)}')
    h, w = hr.shape[-2:]
    if h % scale or w % scale:
        raise ValueError(f'image size {h}×{w} (H×W) is not divisible by scale {scale}; crop the HR image to '
                         f'{h - h % scale}×{w - w % scale} first')
    return _resize(hr, (h // scale, w // scale), (1.0 / scale, 1.0 / scale), antialiasing=True)
