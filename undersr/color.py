"""Colour tools for the paper's colour-difference finding (arXiv 2503.02767, §4.3).

§4.3 of the paper observes that undertrained reconstruction networks shift the colours of their outputs, that this
colour shift between the clean bicubic LR and the degraded LR hurts the fine-tuned SR model, and measures it as the
CIEDE2000 colour difference ΔE. This module provides

* :func:`rgb_to_lab` / :func:`lab_to_rgb`: differentiable, batched sRGB ↔ CIE L*a*b* (D65, 2° observer) on any
  device, numerically matching ``skimage.color.rgb2lab`` / ``lab2rgb``;
* :func:`match_lab_stats`: the ``color_correct: lab-stats`` option, which removes a global colour shift by giving
  the degraded image the per-channel Lab mean and standard deviation of the clean one;
* :func:`delta_e`: mean CIEDE2000 ΔE per image, computed with scikit-image exactly as the paper measures it.

Conversions, for reference (all channels in [0, 1], white point D65 ``(0.95047, 1, 1.08883)``):

* sRGB → linear: ``c / 12.92`` for ``c <= 0.04045``, else ``((c + 0.055) / 1.055) ** 2.4``;
* linear RGB → XYZ with the sRGB primaries matrix ``M`` below, XYZ → Lab with
  ``f(t) = t ** (1/3)`` for ``t > 0.008856``, else ``7.787 t + 16/116``; ``L = 116 f(Y) - 16``,
  ``a = 500 (f(X) - f(Y))``, ``b = 200 (f(Y) - f(Z))``.
The inverse undoes each step (with ``M⁻¹``, the cube for ``f > 0.2068966`` and the sRGB encoding for linear values
above 0.0031308), then clips RGB to [0, 1], as scikit-image does.
"""
from typing import Union

from undersr.image_io import to_unit_float64

import numpy as np
import torch

__all__ = ['rgb_to_lab', 'lab_to_rgb', 'match_lab_stats', 'delta_e']

# Linear sRGB → CIE XYZ (rows X, Y, Z), the sRGB primaries with a D65 white, to the precision scikit-image uses.
_XYZ_FROM_RGB = ((0.412453, 0.357580, 0.180423),
                 (0.212671, 0.715160, 0.072169),
                 (0.019334, 0.119193, 0.950227))
_RGB_FROM_XYZ = tuple(map(tuple, np.linalg.inv(np.array(_XYZ_FROM_RGB)).tolist()))
_D65_WHITE = (0.95047, 1.0, 1.08883)  # XYZ of the reference white, 2° observer

_LAB_EPSILON = 0.008856  # below this, f(t) is the linear segment (CIE's (6/29)³, rounded)
_LAB_KAPPA = 7.787  # slope of the linear segment (CIE's (29/6)² / 3, rounded)
_LAB_OFFSET = 16.0 / 116.0
_LAB_F_EPSILON = 0.2068966  # f(_LAB_EPSILON) ≈ 6/29: the threshold on the inverse side


def _check_image_batch(x: torch.Tensor, name: str) -> None:
    """Raises ValueError unless ``x`` is a floating-point (N, 3, H, W) tensor."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != 3:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f'{name} must be a tensor of shape (N, 3, H, W), got {shape}')
    if not torch.is_floating_point(x):
        raise TypeError(f'{name} must be a floating-point tensor, got {x.dtype}')


def _mix_channels(matrix, x: torch.Tensor) -> torch.Tensor:
    """Applies a 3×3 matrix to the channel axis: ``out[:, i] = sum_j matrix[i][j] * x[:, j]``.

    Args:
        matrix: 3×3 nested tuple of floats.
        x: Tensor of shape (N, 3, H, W).

    Returns:
        Tensor of shape (N, 3, H, W).
    """
    m = torch.tensor(matrix, device=x.device, dtype=x.dtype)
    return torch.einsum('ij,njhw->nihw', m, x)


def _white(x: torch.Tensor) -> torch.Tensor:
    """The D65 white point as a (1, 3, 1, 1) tensor on the device and in the dtype of ``x``."""
    return torch.tensor(_D65_WHITE, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)


def rgb_to_lab(x: torch.Tensor) -> torch.Tensor:
    """sRGB → CIE L*a*b* (D65, 2° observer), matching ``skimage.color.rgb2lab``.

    Differentiable and batched; runs on the device of ``x``.

    Args:
        x: sRGB images of shape (N, 3, H, W), floating point, nominally in [0, 1].

    Returns:
        Lab images of shape (N, 3, H, W): L in [0, 100], a and b roughly in [-128, 127].
    """
    _check_image_batch(x, 'x')
    # sRGB decoding (clamp_min keeps pow away from negatives, whose branch is not selected anyway).
    linear = torch.where(x > 0.04045, ((x.clamp_min(0.04045) + 0.055) / 1.055) ** 2.4, x / 12.92)
    xyz = _mix_channels(_XYZ_FROM_RGB, linear) / _white(x)
    f = torch.where(xyz > _LAB_EPSILON, xyz.clamp_min(_LAB_EPSILON) ** (1.0 / 3.0),
                    _LAB_KAPPA * xyz + _LAB_OFFSET)
    fx, fy, fz = f.unbind(dim=1)
    return torch.stack((116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)), dim=1)


def lab_to_rgb(x: torch.Tensor, clip: bool = True) -> torch.Tensor:
    """CIE L*a*b* (D65, 2° observer) → sRGB, matching ``skimage.color.lab2rgb``.

    As in scikit-image, a negative ``f(Z)`` (a colour far outside every gamut) is set to 0, and the result is
    clipped to [0, 1]. Differentiable and batched; runs on the device of ``x``.

    Args:
        x: Lab images of shape (N, 3, H, W), floating point.
        clip: Clip the sRGB result to [0, 1] (scikit-image always does). Without clipping, out-of-gamut colours
            come back below 0 or above 1.

    Returns:
        sRGB images of shape (N, 3, H, W), in [0, 1] when ``clip``.
    """
    _check_image_batch(x, 'x')
    lightness, a, b = x.unbind(dim=1)
    fy = (lightness + 16.0) / 116.0
    fx = fy + a / 500.0
    fz = (fy - b / 200.0).clamp_min(0.0)
    f = torch.stack((fx, fy, fz), dim=1)
    xyz = torch.where(f > _LAB_F_EPSILON, f ** 3, (f - _LAB_OFFSET) / _LAB_KAPPA) * _white(x)
    linear = _mix_channels(_RGB_FROM_XYZ, xyz)
    rgb = torch.where(linear > 0.0031308, 1.055 * linear.clamp_min(0.0031308) ** (1.0 / 2.4) - 0.055,
                      12.92 * linear)
    return rgb.clamp(0.0, 1.0) if clip else rgb


def match_lab_stats(degraded: torch.Tensor, reference: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Removes a global colour shift: gives ``degraded`` the Lab mean and standard deviation of ``reference``.

    This is the ``color_correct: lab-stats`` option, our answer to the colour shift of §4.3. Per image and per
    Lab channel ``c``: ``out_c = (deg_c - mean(deg_c)) * std(ref_c) / max(std(deg_c), eps) + mean(ref_c)``
    (population standard deviation over H×W). Spatial detail of ``degraded``, the degradation we want to keep,
    is left alone; only its global colour statistics change. If ``reference`` equals ``degraded`` the image is
    returned unchanged (up to rounding and the clamp).

    Args:
        degraded: Degraded sRGB images, shape (N, 3, H, W), in [0, 1].
        reference: Clean sRGB images whose colour statistics to copy, shape (N, 3, H, W), in [0, 1].
        eps: Lower bound on the standard deviation of ``degraded``, so that a flat channel does not divide by 0.

    Returns:
        Corrected sRGB images of shape (N, 3, H, W), clamped to [0, 1], dtype and device of ``degraded``.

    Raises:
        ValueError: If the shapes differ or are not (N, 3, H, W).
    """
    _check_image_batch(degraded, 'degraded')
    _check_image_batch(reference, 'reference')
    if degraded.shape != reference.shape:
        raise ValueError(f'degraded and reference must have the same shape, got {tuple(degraded.shape)} and '
                         f'{tuple(reference.shape)}')
    lab = rgb_to_lab(degraded)
    lab_ref = rgb_to_lab(reference.to(degraded.dtype))
    mean = lab.mean(dim=(2, 3), keepdim=True)  # (N, 3, 1, 1)
    std = lab.std(dim=(2, 3), keepdim=True, unbiased=False)
    mean_ref = lab_ref.mean(dim=(2, 3), keepdim=True)
    std_ref = lab_ref.std(dim=(2, 3), keepdim=True, unbiased=False)
    matched = (lab - mean) * (std_ref / std.clamp_min(eps)) + mean_ref
    return lab_to_rgb(matched, clip=True)


def _to_numpy_batch(img, name: str):
    """Converts an image or batch to float64 NumPy (N, H, W, 3) in [0, 1]; also says whether it was single.

    Accepts torch (N, 3, H, W) or (3, H, W) in [0, 1], and NumPy (H, W, 3) or (N, H, W, 3), uint8 (0..255) or
    float ([0, 1]).
    """
    if isinstance(img, torch.Tensor):
        if img.dim() not in (3, 4) or img.shape[-3] != 3:
            raise ValueError(f'{name}: a tensor must have shape (N, 3, H, W) or (3, H, W), got {tuple(img.shape)}')
        single = img.dim() == 3
        arr = img.detach().to('cpu', torch.float64).numpy()
        arr = np.moveaxis(arr[None] if single else arr, 1, -1)
        return arr, single
    arr = np.asarray(img)
    if arr.ndim not in (3, 4) or arr.shape[-1] != 3:
        raise ValueError(f'{name}: an array must have shape (H, W, 3) or (N, H, W, 3), got {arr.shape}')
    arr = to_unit_float64(arr, name)
    single = arr.ndim == 3
    return (arr[None] if single else arr), single


def delta_e(img1, img2) -> Union[np.ndarray, float]:
    """Mean CIEDE2000 colour difference ΔE per image, as measured in §4.3 of the paper.

    Both images go through ``skimage.color.rgb2lab`` and ``skimage.color.deltaE_ciede2000`` (NumPy, on the CPU);
    the per-pixel ΔE is averaged over each image. The two arguments may be of different kinds.

    Args:
        img1: torch tensor (N, 3, H, W) or (3, H, W) in [0, 1], or NumPy array (H, W, 3) or (N, H, W, 3),
            uint8 (0..255) or float in [0, 1].
        img2: The images to compare with, same size as ``img1``.

    Returns:
        NumPy float64 array of shape (N,) for batches; a float when both inputs are single images.

    Raises:
        ValueError: If the images do not have the same size.
    """
    from skimage.color import deltaE_ciede2000, rgb2lab

    batch1, single1 = _to_numpy_batch(img1, 'img1')
    batch2, single2 = _to_numpy_batch(img2, 'img2')
    if batch1.shape != batch2.shape:
        raise ValueError(f'img1 and img2 must have the same size, got (N, H, W, C) {batch1.shape} and {batch2.shape}')
    per_pixel = deltaE_ciede2000(rgb2lab(batch1), rgb2lab(batch2))  # (N, H, W)
    means = per_pixel.reshape(per_pixel.shape[0], -1).mean(axis=1)
    return float(means[0]) if single1 and single2 else means
