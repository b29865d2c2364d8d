"""Photos in, photos out, each in its own mode: grey stays grey, alpha stays, 16 bit stays 16 bit.

What happens to each mode (as Real-ESRGAN's ``inference_realesrgan.py`` does, except where noted):

============  ==============================================================================================
input         output
============  ==============================================================================================
RGB           the SR network's output
grey          the grey image repeated to RGB, super-resolved, converted back to one channel
RGBA          RGB super-resolved; alpha either super-resolved too (repeated to RGB, ``alpha='model'``,
              Real-ESRGAN's default) or bicubic-upsampled (``alpha='bicubic'``, half the network time)
16 bit        scaled to [0, 1] by 65535 (by its pixel type, not, as Real-ESRGAN does, by its maximum value),
              written back as 16 bit
JPEG          upright: EXIF orientation is applied when reading (Real-ESRGAN reads JPEGs unrotated)
============  ==============================================================================================

Outputs are written atomically (:func:`undersr.fileio.atomic_path`): a killed run leaves no half-written file.
"""
import os
from os import path as osp

from undersr.fileio import atomic_path
from undersr.image_io import IMAGE_EXTENSIONS, BadImageError, to_uint8

import cv2
import numpy as np

ALPHA_MODES = ('model', 'bicubic')


def find_images(inputs, exclude=()):
    """The image files of ``inputs`` with the relative paths their outputs get.

    Args:
        inputs (list[str]): Image files (relative path: the file name) and folders (searched recursively;
            relative path: below the folder).
        exclude (tuple[str]): Folders to leave out (the output folder, when it lies inside an input).

    Returns:
        list[tuple[str, str]]: ``(path, relative path)`` in sorted order.

    Raises:
        FileNotFoundError: an input does not exist.
        ValueError: two inputs give the same relative path; the message names both.
    """
    skip = {osp.realpath(folder) for folder in exclude}
    found = {}
    for item in inputs:
        if osp.isfile(item):
            pairs = [(item, osp.basename(item))]
        elif osp.isdir(item):
            pairs = []
            for folder, dirs, files in os.walk(item):
                dirs[:] = sorted(d for d in dirs if osp.realpath(osp.join(folder, d)) not in skip)
                pairs += [(osp.join(folder, f), osp.relpath(osp.join(folder, f), item)) for f in sorted(files)
                          if f.lower().endswith(IMAGE_EXTENSIONS)]
        else:
            raise FileNotFoundError(f'input {item} does not exist')
        for path, rel in pairs:
            if rel in found and found[rel] != path:
                raise ValueError(f'{found[rel]} and {path} would both be written as {rel}; upscale them separately')
            found[rel] = path
    return sorted(((path, rel) for rel, path in found.items()), key=lambda pair: pair[1])


def read_image(path):
    """Reads an image as stored: (H, W) grey, (H, W, 3) BGR or (H, W, 4) BGRA; uint8 or uint16.

    Raises:
        BadImageError: missing, empty, corrupt, or of another pixel type; the message names the file.
    """
    try:
        with open(path, 'rb') as f:
            data = f.read()
    except OSError as err:
        raise BadImageError(path, f'{type(err).__name__}: {err.strerror or err}') from err
    # IMREAD_UNCHANGED keeps alpha but ignores EXIF orientation; JPEGs have no alpha, so read them upright.
    flags = cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH if data[:2] == b'\xff\xd8' else cv2.IMREAD_UNCHANGED
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if image is None or image.size == 0:
        raise BadImageError(path, 'empty, or not a decodable image (corrupt or truncated?)')
    if image.dtype not in (np.uint8, np.uint16):
        raise BadImageError(path, f'unsupported pixel type {image.dtype} (8- and 16-bit images are supported)')
    return image[..., 0] if image.ndim == 3 and image.shape[2] == 1 else image


def output_path(folder, rel, ext='auto'):
    """Where the output of the input ``rel`` goes: ``folder/rel``, with the extension ``.png`` if ``ext='png'``."""
    return osp.join(folder, rel if ext == 'auto' else f'{osp.splitext(rel)[0]}.{ext}')


def write_image(path, image):
    """Encodes ``image`` by the extension of ``path`` (JPEG quality 95) and writes it atomically.

    Raises:
        OSError: the format cannot hold the image or the file cannot be written; the message names it.
    """
    ext = osp.splitext(path)[1].lower()
    ok, data = cv2.imencode(ext, image, [cv2.IMWRITE_JPEG_QUALITY, 95] if ext in ('.jpg', '.jpeg') else [])
    if not ok:
        raise OSError(f'could not encode {path} as {ext} ({image.dtype}, {image.shape}); use --ext png')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data.tobytes())


def upscale_image(image, method, scale, alpha='model'):
    """Super-resolves one image in its own mode (see the module docstring).

    Args:
        image (ndarray): As :func:`read_image` returns: (H, W), (H, W, 3) BGR or (H, W, 4) BGRA, uint8 or uint16.
        method (Callable): ``method(rgb, (width, height))`` maps (H, W, 3) float32 RGB in [0, 1] to
            (height, width, 3); an :class:`~undersr.upscale.engine.Upscaler` or
            :class:`~undersr.upscale.engine.Bicubic`.
        scale (float): Output size relative to the input.
        alpha (str): ``'model'`` or ``'bicubic'``: how an alpha channel is upscaled.

    Returns:
        ndarray: (round(H * scale), round(W * scale)[, C]) of the same layout and pixel type.
    """
    levels = float(np.iinfo(image.dtype).max)
    x = image.astype(np.float32) / levels
    size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
    if x.ndim == 2:
        out = cv2.cvtColor(method(np.repeat(x[..., None], 3, axis=2), size), cv2.COLOR_RGB2GRAY)
    else:
        out = method(np.ascontiguousarray(x[..., 2::-1]), size)[..., ::-1]  # BGR -> RGB -> BGR
        if x.shape[2] == 4:
            a = x[..., 3]
            a = (method(np.repeat(a[..., None], 3, axis=2), size).mean(axis=2) if alpha == 'model'
                 else np.clip(cv2.resize(a, size, interpolation=cv2.INTER_CUBIC), 0, 1))
            out = np.dstack([out, a])
    if image.dtype == np.uint8:
        return to_uint8(np.ascontiguousarray(out))
    return (np.clip(out, 0, 1) * levels).round().astype(image.dtype)
