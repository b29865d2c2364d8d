"""Decoding images from bytes into BasicSR's convention, with conversions and errors that name the file.

BasicSR's ``imfrombytes`` returns ``None`` or raises deep inside NumPy for a corrupt file, and silently keeps
grey, alpha or 16-bit images in shapes and ranges that break later. :func:`decode_image` always returns
(H, W, 3) float32 BGR in [0, 1], or raises :class:`BadImageError` naming the file.
"""
import warnings

import cv2
import numpy as np
import torch

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')


class BadImageError(ValueError):
    """An image that cannot be decoded. ``path`` names it."""

    def __init__(self, path, reason):
        super().__init__(f'cannot read image {path}: {reason}. Remove or replace the file, or set skip_bad.')
        self.path, self.reason = path, reason


def decode_image(data, path='<bytes>'):
    """Decodes encoded image bytes, warning about each conversion (see :func:`decode_image_noted`).

    Returns:
        ndarray: (H, W, 3) float32, BGR, in [0, 1].
    """
    image, notes = decode_image_noted(data, path)
    for note in notes:
        warnings.warn(note)
    return image


def decode_image_noted(data, path='<bytes>', keep_8bit=False):
    """Decodes encoded image bytes and returns the conversions it made as messages (thread-safe: no warnings).

    Grey images are repeated to three channels, an alpha channel is dropped, and 16-bit images are scaled
    from [0, 65535].

    Args:
        data (bytes): Encoded PNG, JPEG, ... .
        path (str): Name for messages.
        keep_8bit (bool): Return 8-bit images as uint8 (0..255) instead of float32; ``x.astype(np.float32) / 255``
            of the result is what ``keep_8bit=False`` returns. 16-bit images are float32 either way.

    Returns:
        tuple[ndarray, list[str]]: (H, W, 3) float32 BGR image in [0, 1] (or uint8 with ``keep_8bit``), and one
        message per conversion (empty when none), each naming ``path``.

    Raises:
        BadImageError: empty, truncated or not an image.
    """
    if not data:
        raise BadImageError(path, 'the file is empty')
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.size == 0:
        raise BadImageError(path, 'not a decodable image (corrupt or truncated?)')
    notes = []
    if image.dtype == np.uint16:
        image = image.astype(np.float32) / 65535.
        notes.append('16-bit scaled to [0, 1]')
    elif image.dtype == np.uint8:
        if not keep_8bit:
            image = image.astype(np.float32) / 255.
    else:
        raise BadImageError(path, f'unsupported pixel type {image.dtype}')
    if image.ndim == 2 or image.shape[2] == 1:
        image = np.repeat(image.reshape(*image.shape[:2], 1), 3, axis=2)
        notes.append('grey repeated to 3 channels')
    elif image.shape[2] == 4:
        image = image[..., :3]
        notes.append('alpha channel dropped')
    return np.ascontiguousarray(image), [f'{path}: ' + ', '.join(notes)] if notes else []


def to_unit_float64(pixels, what='image'):
    """uint8 pixels scaled to [0, 1], or floating-point pixels as they are, as a float64 NumPy array.

    Raises:
        TypeError: any other pixel type; the message starts with ``what``.
    """
    pixels = np.asarray(pixels)
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float64) / 255.
    if np.issubdtype(pixels.dtype, np.floating):
        return pixels.astype(np.float64)
    raise TypeError(f'{what}: expected uint8 or floating-point pixels, got {pixels.dtype}')


def to_uint8(pixels):
    """Pixels in [0, 1] as uint8 levels: clipped, scaled by 255 and rounded.

    Args:
        pixels (ndarray | Tensor): Any shape, floating point.

    Returns:
        ndarray | Tensor: The same type and shape, dtype uint8 (a tensor stays on its device).
    """
    if isinstance(pixels, torch.Tensor):
        return (pixels.detach().float().clamp(0, 1) * 255).round().to(torch.uint8)
    return (np.clip(pixels, 0, 1) * 255).round().astype(np.uint8)


def read_rgb(path):
    """Reads an image file as (H, W, 3) uint8 RGB (grey is repeated, alpha dropped, 16 bit scaled to 8).

    Raises:
        BadImageError: the file is missing, unreadable or not an image; the message names it.
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise BadImageError(path, f'{type(err).__name__}: {err.strerror or err}') from err
    image, _ = decode_image_noted(data, path, keep_8bit=True)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    return np.ascontiguousarray(image[..., ::-1])
