"""The 15 ImageNet-C corruptions (Hendrycks & Dietterich, ICLR 2019) at severities 1–5, NumPy/OpenCV only.

The paper (arXiv 2503.02767, §4.3) measures how diverse the degradations of a dataset are by classifying them into
these 15 corruption types; :mod:`undersr.analysis.classifier` learns that classifier from images corrupted here.

Why not a package: ``imagecorruptions`` 1.1.2 (the usual one) no longer runs on the current stack (it passes
``multichannel=`` to scikit-image, imports ``scipy.ndimage.interpolation`` and ``pkg_resources``, and its wheel lacks
two of the six frost photos it reads); its maintained fork ``imagecorruptions-imaug`` needs numba. So the
corruptions are written here, compactly, following the published definitions and severity parameters, with these
differences (all deliberate, none matters for telling the types apart):

* ``motion_blur`` uses a one-sided Gaussian-weighted line kernel instead of ImageMagick's motion blur (same radius
  and sigma parameters, random angle in [-45°, 45°]);
* ``glass_blur`` moves every pixel to a random neighbour within ``max_delta`` in one vectorised step per iteration
  instead of the original's slow sequential pixel swaps;
* ``fog`` uses a multi-octave value-noise "plasma" whose octave amplitudes decay like the diamond-square map's;
* ``frost`` has no ImageNet-C frost photographs: a frost-like texture is synthesised procedurally (branching ice
  needles over fractal haze, with a cold tint), blended with the published weights;
* ``elastic_transform`` uses our own severity ladder (a random affine jitter plus a smooth displacement field, both
  proportional to the image size and growing monotonically with severity).

Spatial parameters (blur radii, noise strengths) are in pixels as published for 224-pixel images and are not
rescaled, so they act on local texture the same way at any image size.

Example:
    >>> from undersr.analysis.corruptions import CORRUPTIONS, corrupt
    >>> out = corrupt(image, 'motion_blur', severity=3, rng=0)   # image: (H, W, 3) uint8 RGB
"""
import math

from undersr.image_io import to_uint8, to_unit_float64

import cv2
import numpy as np

__all__ = ['CORRUPTIONS', 'corrupt', 'frost_texture', 'plasma']

CORRUPTIONS = ('gaussian_noise', 'shot_noise', 'impulse_noise', 'defocus_blur', 'glass_blur', 'motion_blur',
               'zoom_blur', 'snow', 'frost', 'fog', 'brightness', 'contrast', 'elastic_transform', 'pixelate',
               'jpeg_compression')


def _gaussian(x, sigma):
    """Gaussian blur of a float image (H, W) or (H, W, C) with mirrored borders."""
    return cv2.GaussianBlur(x, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT_101)


def _filter(x, kernel):
    """Correlates each channel of ``x`` with ``kernel`` (float32), mirrored borders."""
    return cv2.filter2D(x, -1, kernel.astype(np.float32), borderType=cv2.BORDER_REFLECT_101)


def _centre_zoom(x, factor):
    """Magnifies the centre of ``x`` by ``factor`` ≥ 1, keeping the size (H, W[, C])."""
    h, w = x.shape[:2]
    ch, cw = max(1, int(round(h / factor))), max(1, int(round(w / factor)))
    top, left = (h - ch) // 2, (w - cw) // 2
    out = cv2.resize(np.ascontiguousarray(x[top:top + ch, left:left + cw]), (w, h), interpolation=cv2.INTER_LINEAR)
    return out.reshape(x.shape)


def _line_kernel(radius, sigma, angle_deg):
    """One-sided motion kernel: a line of ``radius`` pixels from the centre, Gaussian weights along it.

    Returns:
        ndarray: (2R + 1, 2R + 1) float32 summing to 1, with R = ceil(radius).
    """
    size = 2 * int(math.ceil(radius)) + 1
    centre = size // 2
    kernel = np.zeros((size, size), np.float32)
    dx, dy = math.cos(math.radians(angle_deg)), -math.sin(math.radians(angle_deg))
    for t in np.arange(0, radius + 1e-6, 0.5):  # half-pixel steps, bilinear splats
        weight = math.exp(-t * t / (2 * sigma * sigma))
        px, py = centre + t * dx, centre + t * dy
        x0, y0 = int(math.floor(px)), int(math.floor(py))
        fx, fy = px - x0, py - y0
        for yy, xx, wgt in ((y0, x0, (1 - fx) * (1 - fy)), (y0, x0 + 1, fx * (1 - fy)),
                            (y0 + 1, x0, (1 - fx) * fy), (y0 + 1, x0 + 1, fx * fy)):
            if 0 <= yy < size and 0 <= xx < size:
                kernel[yy, xx] += weight * wgt
    return kernel / kernel.sum()


def plasma(height, width, decay, rng):
    """Fractal cloud noise in [0, 1]: octaves of smooth random grids whose amplitude falls by ``decay`` per octave.

    Like the diamond-square plasma of ImageNet-C's fog (whose "wibble" shrinks by ``wibbledecay`` per level): a
    larger ``decay`` gives smoother, larger blobs.

    Args:
        height (int): Output height.
        width (int): Output width.
        decay (float): Amplitude ratio between consecutive octaves (> 1).
        rng (np.random.Generator): Random source.

    Returns:
        ndarray: (height, width) float64 in [0, 1].
    """
    size = max(height, width, 2)
    octaves = int(math.ceil(math.log2(size)))
    acc = np.zeros((size, size), np.float64)
    for k in range(1, octaves + 1):
        cells = 2 ** k + 1
        grid = rng.standard_normal((cells, cells)).astype(np.float32)
        acc += cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC) * decay ** (-k)
    acc = acc[:height, :width]
    acc -= acc.min()
    return acc / max(acc.max(), 1e-12)


def frost_texture(height, width, rng):
    """A procedural frost layer, our stand-in for ImageNet-C's frost photographs.

    Branching ice needles (straight strokes with side branches at about ±60°, random sizes and brightness) are
    drawn over a fractal haze, lightly blurred, and tinted cold white-blue.

    Args:
        height (int): Output height.
        width (int): Output width.
        rng (np.random.Generator): Random source.

    Returns:
        ndarray: (height, width, 3) float64 RGB in [0, 1].
    """
    haze = plasma(height, width, 1.6, rng) ** 1.5 * 0.45
    needles = np.zeros((height, width), np.float32)
    scale = max(height, width)
    count = max(6, int(scale * scale / 250))
    for _ in range(count):
        x0, y0 = rng.uniform(0, width), rng.uniform(0, height)
        angle = rng.uniform(0, 2 * math.pi)
        length = rng.uniform(0.04, 0.18) * scale + 2
        level = float(rng.uniform(0.3, 0.9))
        x1, y1 = x0 + length * math.cos(angle), y0 + length * math.sin(angle)
        cv2.line(needles, (int(x0), int(y0)), (int(x1), int(y1)), level, 1, cv2.LINE_AA)
        for _ in range(int(rng.integers(0, 4))):  # side branches off the needle
            t = rng.uniform(0.2, 0.9)
            bx, by = x0 + t * (x1 - x0), y0 + t * (y1 - y0)
            side = angle + rng.choice((-1.0, 1.0)) * math.radians(rng.uniform(50, 70))
            blen = length * rng.uniform(0.2, 0.45)
            cv2.line(needles, (int(bx), int(by)), (int(bx + blen * math.cos(side)), int(by + blen * math.sin(side))),
                     level * 0.8, 1, cv2.LINE_AA)
    needles = _gaussian(needles, 0.6)
    frost = np.clip(haze + needles, 0, 1)
    tint = np.array([0.86, 0.93, 1.0])  # RGB: cold white-blue
    return frost[..., None] * tint


# ------------------------------------------------------------------------------------------- the 15 corruptions
# Each takes a float64 RGB image (H, W, 3) in [0, 1], a severity 1..5 and a Generator, and returns float64 (not
# yet clipped). Tuples are indexed by severity - 1.

def gaussian_noise(x, s, rng):
    return x + rng.normal(0, (0.08, 0.12, 0.18, 0.26, 0.38)[s - 1], x.shape)


def shot_noise(x, s, rng):
    photons = (60, 25, 12, 5, 3)[s - 1]
    return rng.poisson(np.clip(x, 0, 1) * photons) / photons


def impulse_noise(x, s, rng):
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[s - 1]
    u = rng.random(x.shape)
    out = x.copy()
    out[u < amount / 2] = 0.0  # pepper
    out[(u >= amount / 2) & (u < amount)] = 1.0  # salt
    return out


def defocus_blur(x, s, rng):
    radius, alias_sigma = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))[s - 1]
    r = np.arange(-radius, radius + 1)
    disk = ((r[:, None] ** 2 + r[None, :] ** 2) <= radius ** 2).astype(np.float32)
    disk = cv2.GaussianBlur(disk / disk.sum(), (3, 3), alias_sigma)
    return _filter(x.astype(np.float32), disk / disk.sum()).astype(np.float64)


def glass_blur(x, s, rng):
    sigma, max_delta, iterations = ((0.7, 1, 2), (0.9, 2, 1), (1, 2, 3), (1.1, 3, 2), (1.5, 4, 2))[s - 1]
    h, w = x.shape[:2]
    out = _gaussian(x, sigma)
    rows, cols = np.mgrid[0:h, 0:w]
    for _ in range(iterations):
        dy, dx = rng.integers(-max_delta, max_delta, size=(2, h, w))
        out = out[np.clip(rows + dy, 0, h - 1), np.clip(cols + dx, 0, w - 1)]
    return _gaussian(out, sigma)


def motion_blur(x, s, rng):
    radius, sigma = ((10, 3), (15, 5), (15, 8), (15, 12), (20, 15))[s - 1]
    kernel = _line_kernel(radius, sigma, rng.uniform(-45, 45))
    return _filter(x.astype(np.float32), kernel).astype(np.float64)


def zoom_blur(x, s, rng):
    stop, step = ((1.11, 0.01), (1.16, 0.01), (1.21, 0.02), (1.26, 0.02), (1.31, 0.03))[s - 1]
    factors = np.arange(1, stop, step)
    acc = x.copy()
    for factor in factors:
        acc += _centre_zoom(x, factor)
    return acc / (len(factors) + 1)


def snow(x, s, rng):
    loc, spread, zoom, threshold, radius, sigma, blend = (
        (0.1, 0.3, 3, 0.5, 10, 4, 0.8), (0.2, 0.3, 2, 0.5, 12, 4, 0.7), (0.55, 0.3, 4, 0.9, 12, 8, 0.7),
        (0.55, 0.3, 4.5, 0.85, 12, 8, 0.65), (0.55, 0.3, 2.5, 0.85, 12, 12, 0.55))[s - 1]
    h, w = x.shape[:2]
    flakes = _centre_zoom(rng.normal(loc, spread, (h, w)).astype(np.float32), zoom)
    flakes[flakes < threshold] = 0
    flakes = np.clip(flakes, 0, 1)
    flakes = _filter(flakes, _line_kernel(radius, sigma, rng.uniform(-135, -45))).astype(np.float64)[..., None]
    grey = cv2.cvtColor(x.astype(np.float32), cv2.COLOR_RGB2GRAY).astype(np.float64)[..., None]
    x = blend * x + (1 - blend) * np.maximum(x, grey * 1.5 + 0.5)
    return x + flakes + np.rot90(flakes, 2)


def frost(x, s, rng):
    image_weight, frost_weight = ((1, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[s - 1]
    return image_weight * x + frost_weight * frost_texture(x.shape[0], x.shape[1], rng)


def fog(x, s, rng):
    strength, decay = ((1.5, 2), (2.0, 2), (2.5, 1.7), (2.5, 1.5), (3.0, 1.4))[s - 1]
    peak = x.max()
    x = x + strength * plasma(x.shape[0], x.shape[1], decay, rng)[..., None]
    return x * peak / (peak + strength)


def brightness(x, s, rng):
    from skimage.color import hsv2rgb, rgb2hsv
    hsv = rgb2hsv(np.clip(x, 0, 1))
    hsv[..., 2] = np.clip(hsv[..., 2] + (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1], 0, 1)
    return hsv2rgb(hsv)


def contrast(x, s, rng):
    factor = (0.4, 0.3, 0.2, 0.1, 0.05)[s - 1]
    mean = x.mean(axis=(0, 1), keepdims=True)
    return (x - mean) * factor + mean


def elastic_transform(x, s, rng):
    h, w = x.shape[:2]
    size = min(h, w)
    jitter = (0.01, 0.015, 0.02, 0.025, 0.03)[s - 1] * size  # affine: corner displacement in pixels
    amplitude = (0.015, 0.025, 0.035, 0.05, 0.07)[s - 1] * size  # elastic: peak displacement in pixels
    smooth = max(1.5, 0.05 * size)  # elastic: smoothness (Gaussian sigma) of the displacement field
    src = np.float32([[0, 0], [w - 1, 0], [0, h - 1]])
    dst = src + rng.uniform(-jitter, jitter, src.shape).astype(np.float32)
    affine = cv2.getAffineTransform(dst, src)  # output pixel → input position
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = (affine[0, 0] * cols + affine[0, 1] * rows + affine[0, 2]).astype(np.float32)
    map_y = (affine[1, 0] * cols + affine[1, 1] * rows + affine[1, 2]).astype(np.float32)
    for grid in (map_x, map_y):
        field = _gaussian(rng.uniform(-1, 1, (h, w)).astype(np.float32), smooth)
        grid += field / max(np.abs(field).max(), 1e-6) * amplitude
    out = cv2.remap(x.astype(np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return out.astype(np.float64)


def pixelate(x, s, rng):
    factor = (0.6, 0.5, 0.4, 0.3, 0.25)[s - 1]
    h, w = x.shape[:2]
    small = cv2.resize(x.astype(np.float32), (max(1, int(w * factor)), max(1, int(h * factor))),
                       interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST).astype(np.float64)


def jpeg_compression(x, s, rng):
    quality = (25, 18, 15, 10, 7)[s - 1]
    bgr = to_uint8(x[..., ::-1])
    ok, data = cv2.imencode('.jpg', bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('OpenCV could not encode a JPEG')
    return cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64) / 255.


_FUNCTIONS = {name: globals()[name] for name in CORRUPTIONS}


def corrupt(image, name, severity=1, rng=None):
    """Applies one ImageNet-C corruption.

    Args:
        image (ndarray): (H, W, 3) RGB, uint8 in [0, 255] or float in [0, 1].
        name (str): One of :data:`CORRUPTIONS`.
        severity (int): 1 (mild) to 5 (strong).
        rng (np.random.Generator | int | None): Random source or seed (noise, angles, textures).

    Returns:
        ndarray: (H, W, 3), same dtype as ``image``, clipped to its range.

    Raises:
        ValueError: unknown ``name``, severity outside 1..5, or not an (H, W, 3) image.
    """
    if name not in _FUNCTIONS:
        raise ValueError(f'unknown corruption {name!r}; choose from {", ".join(CORRUPTIONS)}')
    if int(severity) != severity or not 1 <= severity <= 5:
        raise ValueError(f'severity must be an integer 1..5, got {severity!r}')
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f'expected an (H, W, 3) RGB image, got shape {image.shape}')
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    x = to_unit_float64(image, f'corrupt({name!r})')
    out = np.clip(_FUNCTIONS[name](x, int(severity), rng), 0, 1)
    if image.dtype == np.uint8:
        return to_uint8(out)
    return out.astype(image.dtype)
