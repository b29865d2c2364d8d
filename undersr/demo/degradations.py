"""The demo's test degradations: realistic ones, and plain bicubic.

No training step sees the realistic ones except the ceiling, an oracle that trains on them (``sr_ceiling.yml``).

Each takes an HR photo and returns its ×4 LR; all randomness comes from the seed. The three realistic sets follow
issue 11: (1) blur, noise and JPEG; (2) motion blur, area downsampling and Poisson-Gaussian noise; (3) defocus.
Their strengths are mid-range camera values fixed before any score was seen (``docs/demo-report.md``): the blur
kernels are ImageNet-C's (:mod:`undersr.analysis.corruptions`) at low severity, in HR pixels.
"""
from undersr.analysis.corruptions import corrupt
from undersr.image_io import to_uint8
from undersr.resize import bicubic_downsample

import cv2
import numpy as np

SCALE = 4
# Poisson-Gaussian noise: photons at full white (shot noise 6.4/255 at mid-grey) and read noise.
PHOTONS, READ_NOISE = 800, 2 / 255


def bicubic(hr, seed):
    """MATLAB bicubic ×4: the degradation the pre-trained model learned."""
    return bicubic_downsample(hr, SCALE)


def blur_noise_jpeg(hr, seed):
    """Gaussian blur (σ 1.2 HR px), bicubic ×4, Gaussian noise (σ 4/255) and JPEG (quality 70)."""
    lr = bicubic_downsample(cv2.GaussianBlur(hr, (0, 0), sigmaX=1.2), SCALE).astype(np.float64) / 255
    lr += np.random.default_rng(seed).normal(0, 4 / 255, lr.shape)
    return jpeg(to_uint8(lr), 70)


def motion_area_noise(hr, seed):
    """Motion blur (ImageNet-C severity 1: a 10 HR px streak at a random angle), area ×4, Poisson-Gaussian noise."""
    rng = np.random.default_rng(seed)
    blurred = corrupt(hr, 'motion_blur', severity=1, rng=rng)
    lr = cv2.resize(blurred, (hr.shape[1] // SCALE, hr.shape[0] // SCALE), interpolation=cv2.INTER_AREA)
    lr = rng.poisson(lr.astype(np.float64) / 255 * PHOTONS) / PHOTONS + rng.normal(0, READ_NOISE, lr.shape)
    return to_uint8(lr)


def defocus(hr, seed):
    """Defocus (ImageNet-C severity 2: a disk of radius 4 HR px), bicubic ×4."""
    return bicubic_downsample(corrupt(hr, 'defocus_blur', severity=2, rng=seed), SCALE)


def jpeg(rgb, quality):
    """JPEG round trip of an (H, W, 3) uint8 RGB image."""
    ok, data = cv2.imencode('.jpg', np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError('OpenCV could not encode a JPEG')
    return np.ascontiguousarray(cv2.imdecode(data, cv2.IMREAD_COLOR)[..., ::-1])


# name -> (function, description for the report). 'bicubic' checks that the pre-trained model is an SR model.
DEGRADATIONS = {
    'bicubic': (bicubic, 'plain bicubic ×4 (the pre-training degradation)'),
    'blur-noise-jpeg': (blur_noise_jpeg, 'Gaussian blur σ 1.2, bicubic ×4, Gaussian noise σ 4/255, JPEG q70'),
    'motion-noise': (motion_area_noise, 'motion blur 10 px, area ×4, Poisson-Gaussian noise (800 photons, σ 2/255)'),
    'defocus': (defocus, 'defocus disk r 4 px, bicubic ×4'),
}
REALISTIC = ('blur-noise-jpeg', 'motion-noise', 'defocus')
