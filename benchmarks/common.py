"""Helpers shared by the benchmark scripts: machine information, timers, and reconstruction checkpoints.

The scripts import this module as ``common`` (Python puts the script's folder first on ``sys.path``).
"""
import os
import platform
import sys
import time

from undersr.device import resolve_device

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
try:
    import undersr  # noqa: F401  (installs the torchvision shim BasicSR needs)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, ROOT)
    import undersr  # noqa: F401

RECON_MODELS = ['VQVAE2', 'VQVAE', 'VanillaVAE', 'MAE', 'DDIM']
# Tiny configurations for --smoke runs: they check that a script works, their speed means nothing.
TINY_CONFIGS = {
    'VQVAE2': dict(hidden_channels=16, res_channels=8, num_res_blocks=1, num_embeddings=32, embedding_dim=8),
    'VQVAE': dict(hidden_channels=16, res_channels=8, num_res_blocks=1, num_embeddings=32, embedding_dim=8),
    'VanillaVAE': dict(hidden_channels=8, latent_channels=4, num_downsamples=2),
    'MAE': dict(patch_size=8, embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=16, decoder_depth=1,
                decoder_num_heads=2),
    'DDIM': dict(base_channels=8, channel_mults=(1, 2), num_inference_steps=2)}


def cpu_name():
    """The CPU model from /proc/cpuinfo where there is one, else what :mod:`platform` knows."""
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average():
    """The 1-, 5- and 15-minute load averages as text, e.g. ``'0.52 0.80 1.10'`` (``'n/a'`` where unknown)."""
    try:
        return ' '.join(f'{v:.2f}' for v in os.getloadavg())
    except (AttributeError, OSError):
        return 'n/a'


def machine_info(device):
    """One line describing the machine, the libraries, the device the benchmark runs on and the current load."""
    device = torch.device(device)
    text = (f'python {platform.python_version()}, torch {torch.__version__}, cpu: {cpu_name()} ({os.cpu_count()} '
            f'logical cores), {torch.get_num_threads()} torch threads, device {device}')
    if device.type == 'cuda':
        text += f' ({torch.cuda.get_device_name(device)})'
    return text + f', load average {load_average()}'


def synchronize(device):
    """Waits for the device's queued work (CUDA); nothing to do on the CPU."""
    if torch.device(device).type == 'cuda':
        torch.cuda.synchronize(device)


def timings(fn, device, repeats=5, warmup=1, budget_s=None):
    """Wall times of ``fn()`` in seconds, sorted, synchronising CUDA around each call.

    Args:
        fn (callable): The work to time.
        device (str | torch.device): Where ``fn`` runs (for synchronisation).
        repeats (int): Timed calls (at least one).
        warmup (int): Untimed calls first.
        budget_s (float | None): Stop repeating once the timed calls took this long (at least one is made).

    Returns:
        list[float]: Sorted times.
    """
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(max(1, repeats)):
        synchronize(device)
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
        if budget_s is not None and sum(times) >= budget_s:
            break
    return sorted(times)


def seconds_per_call(fn, device, repeats=5, warmup=1, budget_s=None):
    """Median wall time of ``fn()`` in seconds (see :func:`timings`)."""
    times = timings(fn, device, repeats, warmup, budget_s)
    return times[len(times) // 2]


def default_device():
    """``'cuda'`` when a GPU is available, else ``'cpu'`` (as a string, for argparse defaults)."""
    return resolve_device('auto').type


def save_recon_checkpoint(folder, name, tiny=False, seed=0):
    """Writes a randomly initialised reconstruction network as ``ReconstructionModel`` would save it.

    Args:
        folder (str): Where to write ``<name>.pth``.
        name (str): Architecture, one of :data:`RECON_MODELS`.
        tiny (bool): Use :data:`TINY_CONFIGS` instead of the default (paper-scale) configuration.
        seed (int): Seed of the random weights.

    Returns:
        str: The checkpoint's path.
    """
    from undersr.archs.recon_base import save_reconstruction

    from basicsr.utils.registry import ARCH_REGISTRY
    torch.manual_seed(seed)
    options = dict(TINY_CONFIGS[name]) if tiny else {}
    net = ARCH_REGISTRY.get(name)(**options)
    path = os.path.join(folder, f'{name}.pth')
    save_reconstruction(path, net, {'type': name, **options}, epoch=8, iteration=0)
    return path


def undersr_command():
    """The command line prefix that runs the ``undersr`` CLI with this interpreter."""
    return [sys.executable, '-m', 'undersr']


def fmt_rate(value):
    """A throughput with about three significant digits."""
    return f'{value:.3g}' if value < 100 else f'{value:.0f}'


def photo_patches(count, size, seed=0):
    """``count`` RGB patches of ``size``² cut from scikit-image's bundled photos (resized up where needed).

    Returns:
        list[ndarray]: (size, size, 3) uint8 RGB arrays.
    """
    from undersr.sample_data import COLOR_IMAGES, load

    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    photos = [load(name) for name in COLOR_IMAGES]
    patches = []
    for i in range(count):
        photo = photos[i % len(photos)]
        h, w = photo.shape[:2]
        if min(h, w) < size:
            ratio = size / min(h, w)
            photo = cv2.resize(photo, (max(size, round(w * ratio)), max(size, round(h * ratio))),
                               interpolation=cv2.INTER_CUBIC)
            h, w = photo.shape[:2]
        top, left = rng.integers(0, h - size + 1), rng.integers(0, w - size + 1)
        patches.append(np.ascontiguousarray(photo[top:top + size, left:left + size]))
    return patches


def hr_batch(count, size, device='cpu', seed=0):
    """A (count, 3, size, size) float32 batch in [0, 1] of :func:`photo_patches`, on ``device``."""
    import numpy as np
    patches = np.stack(photo_patches(count, size, seed))
    return torch.from_numpy(patches).permute(0, 3, 1, 2).float().div(255).contiguous().to(device)


def write_hr_images(folder, count, size, seed=0):
    """Writes ``count`` PNG photos of ``size``² into ``folder`` (``img0000.png``, ...); returns the folder."""
    import cv2
    os.makedirs(folder, exist_ok=True)
    for i, patch in enumerate(photo_patches(count, size, seed)):
        cv2.imwrite(os.path.join(folder, f'img{i:04d}.png'), patch[..., ::-1])
    return folder
