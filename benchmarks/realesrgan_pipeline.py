"""Real-ESRGAN's second-order degradation as BasicSR 1.4.2 ships it, and a tuned equivalent, for benchmarks.

The shipped pipeline has two halves: ``RealESRGANDataset.__getitem__`` draws three blur kernels per sample in the
DataLoader workers, and ``RealESRGANModel.feed_data`` degrades the batch on the training device (USM sharpening of
the ground truth, blur, resize, noise, JPEG, twice, then the final sinc filter and JPEG, and the training-pair pool).
:class:`KernelSampler` reproduces the kernel half (decoding and cropping are left out, as on our side); the degradation
half is the model's own ``feed_data``, from the device-agnostic ``RealESRGANModel`` that undersr registers.

:func:`tuned` swaps in faster parts that compute the same thing from the same random numbers (the first three
are the default; the last two measured no gain on a CPU and are kept for the record):

* the 51×51 Gaussian of the USM sharpener, an outer product, as two 51-tap depthwise passes (the shipped
  single-channel 51×51 convolution is the slowest operation of the whole pipeline on a CPU);
* the per-sample blur kernels trimmed to the support that is non-zero in the batch (they are 7..21 taps padded
  to 21 with zeros), with the same reflect padding, so no multiply by zero;
* the count of grey levels in the Poisson noise from one batched histogram instead of ``torch.unique`` per sample;
* the training-pair pool shuffled through an index array instead of copying the whole pool every iteration;
* denormal floats flushed to zero (``torch.set_flush_denormal``; some Gaussian kernel entries are denormal).

The degradation options are those of BasicSR's official ``options/train/RealESRGAN/train_realesrgan_x4plus.yml``
(the same numbers as in xinntao/Real-ESRGAN's ``options/train_realesrgan_x4plus.yml``).
"""
import contextlib
import math
import random

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)

import cv2
import numpy as np
import torch
import torch.nn.functional as F

# Model-level options of train_realesrgan_x4plus.yml: the synthesis in RealESRGANModel.feed_data.
X4PLUS_DEGRADATION = {
    'scale': 4, 'gt_size': 256, 'queue_size': 180, 'l1_gt_usm': True, 'percep_gt_usm': True, 'gan_gt_usm': False,
    'resize_prob': [0.2, 0.7, 0.1], 'resize_range': [0.15, 1.5], 'gaussian_noise_prob': 0.5,
    'noise_range': [1, 30], 'poisson_scale_range': [0.05, 3], 'gray_noise_prob': 0.4, 'jpeg_range': [30, 95],
    'second_blur_prob': 0.8, 'resize_prob2': [0.3, 0.4, 0.3], 'resize_range2': [0.3, 1.2],
    'gaussian_noise_prob2': 0.5, 'noise_range2': [1, 25], 'poisson_scale_range2': [0.05, 2.5],
    'gray_noise_prob2': 0.4, 'jpeg_range2': [30, 95]}
_KERNEL_TYPES = ['iso', 'aniso', 'generalized_iso', 'generalized_aniso', 'plateau_iso', 'plateau_aniso']
# Dataset-level options of the same file: the kernels drawn in RealESRGANDataset.__getitem__.
X4PLUS_KERNELS = {
    'blur_kernel_size': 21, 'kernel_list': _KERNEL_TYPES, 'kernel_prob': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob': 0.1, 'blur_sigma': [0.2, 3], 'betag_range': [0.5, 4], 'betap_range': [1, 2],
    'blur_kernel_size2': 21, 'kernel_list2': _KERNEL_TYPES, 'kernel_prob2': [0.45, 0.25, 0.12, 0.03, 0.12, 0.03],
    'sinc_prob2': 0.1, 'blur_sigma2': [0.2, 1.5], 'betag_range2': [0.5, 4], 'betap_range2': [1, 2],
    'final_sinc_prob': 0.8}


class KernelSampler:
    """Draws the per-sample kernels of ``RealESRGANDataset.__getitem__`` (sizes 7..21, zero-padded to 21).

    Args:
        opt (dict): Kernel options, e.g. :data:`X4PLUS_KERNELS`.
    """

    sizes = list(range(7, 22, 2))
    full = 21

    def __init__(self, opt=X4PLUS_KERNELS):
        self.opt = opt
        self.pulse = torch.zeros(self.full, self.full)
        self.pulse[self.full // 2, self.full // 2] = 1

    def _blur(self, suffix):
        from basicsr.data.degradations import circular_lowpass_kernel, random_mixed_kernels
        o = self.opt
        size = random.choice(self.sizes)
        if np.random.uniform() < o['sinc_prob' + suffix]:
            cutoff = np.random.uniform(np.pi / 3 if size < 13 else np.pi / 5, np.pi)
            kernel = circular_lowpass_kernel(cutoff, size, pad_to=False)
        else:
            sigma = o['blur_sigma' + suffix]
            kernel = random_mixed_kernels(o['kernel_list' + suffix], o['kernel_prob' + suffix], size, sigma, sigma,
                                          [-math.pi, math.pi], o['betag_range' + suffix], o['betap_range' + suffix],
                                          noise_range=None)
        pad = (self.full - size) // 2
        return torch.FloatTensor(np.pad(kernel, ((pad, pad), (pad, pad))))

    def sample(self):
        """One sample's ``kernel1``, ``kernel2`` and ``sinc_kernel``, each (21, 21) float32."""
        from basicsr.data.degradations import circular_lowpass_kernel
        kernel1, kernel2 = self._blur(''), self._blur('2')
        if np.random.uniform() < self.opt['final_sinc_prob']:
            size = random.choice(self.sizes)
            sinc = torch.FloatTensor(circular_lowpass_kernel(np.random.uniform(np.pi / 3, np.pi), size,
                                                             pad_to=self.full))
        else:
            sinc = self.pulse
        return {'kernel1': kernel1, 'kernel2': kernel2, 'sinc_kernel': sinc}

    def batch(self, n):
        """Kernels of ``n`` samples, stacked as the DataLoader collates them: three (n, 21, 21) tensors."""
        samples = [self.sample() for _ in range(n)]
        return {key: torch.stack([s[key] for s in samples]) for key in samples[0]}


def queue_size_for(batch_size, official=180):
    """The official pool size rounded down to a multiple of the batch size (BasicSR asserts divisibility)."""
    return max(batch_size, official // batch_size * batch_size)


def build_model(device, batch_size, workdir, queue_size=None, gt_size=256):
    """The registered (device-agnostic) ``RealESRGANModel`` with the x4plus degradation options.

    The networks are tiny (they are not timed); the perceptual loss is left out because it needs VGG19 weights.

    Args:
        device (str | torch.device): ``'cpu'`` or a CUDA device.
        batch_size (int): Batch size, for the pool size.
        workdir (str): Folder for BasicSR's experiment paths (nothing is written there).
        queue_size (int | None): Training-pair pool size; default the official 180 rounded to the batch size.
        gt_size (int): Size of the HR patches (the official 256; the final crop keeps all of such a patch).

    Returns:
        BaseModel: The model, in training mode.
    """
    from basicsr.models import build_model as basicsr_build_model
    device = torch.device(device)
    num_gpu = 1 if device.type == 'cuda' else 0
    opt = dict(X4PLUS_DEGRADATION, model_type='RealESRGANModel', num_gpu=num_gpu, dist=False, is_train=True,
               rank=0, world_size=1, queue_size=queue_size or queue_size_for(batch_size), gt_size=gt_size,
               network_g={'type': 'EDSR', 'num_in_ch': 3, 'num_out_ch': 3, 'num_feat': 4, 'num_block': 1,
                          'upscale': 4},
               network_d={'type': 'UNetDiscriminatorSN', 'num_in_ch': 3, 'num_feat': 4},
               path={'pretrain_network_g': None, 'strict_load_g': True, 'resume_state': None,
                     'experiments_root': workdir, 'models': workdir, 'training_states': workdir},
               train={'ema_decay': 0, 'optim_g': {'type': 'Adam', 'lr': 1e-4}, 'optim_d': {'type': 'Adam', 'lr': 1e-4},
                      'scheduler': {'type': 'MultiStepLR', 'milestones': [10], 'gamma': 0.5}, 'total_iter': 1,
                      'pixel_opt': {'type': 'L1Loss'},
                      'gan_opt': {'type': 'GANLoss', 'gan_type': 'vanilla', 'loss_weight': 0.1}})
    if device.type == 'cuda' and device.index is not None:
        torch.cuda.set_device(device)  # BasicSR puts the model on the current CUDA device
    model = basicsr_build_model(opt)
    if model.device.type != device.type:
        raise RuntimeError(f'RealESRGANModel was built on {model.device}, expected {device}')
    return model


def fill_pool(model, gt_shape, generator=None):
    """Puts the training-pair pool in its steady state (full), with random content.

    Both the shipped and the tuned pool read ``queue_lr``/``queue_gt``/``queue_ptr``; the tuned one also starts
    from the identity order.

    Args:
        model: The model of :func:`build_model`.
        gt_shape (tuple): (b, c, H, W) of the ground-truth batches.
        generator (torch.Generator | None): CPU generator for the content (for identical pools in two models).
    """
    _, c, h, w = gt_shape
    scale = model.opt['scale']
    q = model.queue_size
    model.queue_gt = torch.rand(q, c, h, w, generator=generator).to(model.device)
    model.queue_lr = torch.rand(q, c, h // scale, w // scale, generator=generator).to(model.device)
    model.queue_ptr = q
    model.pool_order = torch.arange(q)


def shipped_step(model, sampler, gt):
    """One iteration of the shipped pipeline: kernels of every sample, then ``feed_data``.

    Returns:
        tuple[Tensor, Tensor]: the model's ``lq`` and ``gt`` after the step.
    """
    data = sampler.batch(gt.size(0))
    data['gt'] = gt
    model.feed_data(data)
    return model.lq, model.gt


# ------------------------------------------------------------------------------------------------ tuned parts


class SeparableUSM(torch.nn.Module):
    """BasicSR's ``USMSharp`` with its Gaussian applied as two 1-D depthwise passes (same weights, same output).

    Args:
        radius (int): Kernel size (made odd), as in ``USMSharp``.
        sigma (float): Gaussian sigma; 0 lets OpenCV derive it from the size, as in ``USMSharp``.
    """

    def __init__(self, radius=50, sigma=0):
        super().__init__()
        if radius % 2 == 0:
            radius += 1
        self.radius = radius
        self.register_buffer('taps', torch.from_numpy(cv2.getGaussianKernel(radius, sigma)).float().flatten())

    def blur(self, img):
        """Reflect-padded Gaussian blur of (b, c, h, w), like ``filter2D(img, outer(taps, taps))``."""
        b, c, h, w = img.shape
        r = self.radius // 2
        x = F.pad(img, (r, r, r, r), mode='reflect').reshape(1, b * c, h + 2 * r, w + 2 * r)
        taps = self.taps.to(img.dtype)
        x = F.conv2d(x, taps.view(1, 1, 1, -1).expand(b * c, 1, 1, self.radius), groups=b * c)
        x = F.conv2d(x, taps.view(1, 1, -1, 1).expand(b * c, 1, self.radius, 1), groups=b * c)
        return x.reshape(b, c, h, w)

    def forward(self, img, weight=0.5, threshold=10):
        """Unsharp masking with a soft mask, as ``USMSharp.forward``."""
        residual = img - self.blur(img)
        soft_mask = self.blur((residual.abs() * 255 > threshold).to(img.dtype))
        sharp = torch.clip(img + weight * residual, 0, 1)
        return soft_mask * sharp + (1 - soft_mask) * img


def trimmed_filter2d(img, kernel):
    """``filter2D`` with the kernels cut to the smallest centred square that holds every non-zero tap.

    Zero taps add nothing and the reflect padding reads the same pixels, so the result is the same.

    Args:
        img (Tensor): (b, c, h, w).
        kernel (Tensor): (1, k, k) or (b, k, k), k odd.

    Returns:
        Tensor: (b, c, h, w).
    """
    from undersr.basicsr_fixes import filter2D
    k = kernel.size(-1)
    nonzero = (kernel != 0).any(0)
    if nonzero.any():
        rows, cols = nonzero.nonzero(as_tuple=True)
        centre = k // 2
        radius = int(max((rows - centre).abs().max(), (cols - centre).abs().max()))
        if radius < centre:
            kernel = kernel[:, centre - radius:centre + radius + 1, centre - radius:centre + radius + 1]
    return filter2D(img, kernel)


def _grey_levels(img):
    """The number of distinct 8-bit levels in each sample of (b, c, h, w) in [0, 1] (after rounding)."""
    b = img.size(0)
    levels = torch.clamp((img * 255.0).round(), 0, 255).to(torch.int64).reshape(b, -1)
    levels = levels + 256 * torch.arange(b, device=img.device).unsqueeze(1)
    return (torch.bincount(levels.flatten(), minlength=256 * b).reshape(b, 256) > 0).sum(1)


def _poisson(img):
    """Poisson noise of (b, c, h, w) images with the level count of BasicSR (next power of two of the levels)."""
    b = img.size(0)
    img = torch.clamp((img * 255.0).round(), 0, 255) / 255.
    vals = torch.exp2(torch.ceil(torch.log2(_grey_levels(img).double()))).to(img.dtype).view(b, 1, 1, 1)
    return torch.poisson(img * vals) / vals - img


def fast_poisson_noise(img, scale_range=(0, 1.0), gray_prob=0, clip=True, rounds=False):
    """``random_add_poisson_noise_pt`` drawing the same random numbers, with a histogram level count.

    Args:
        img (Tensor): (b, c, h, w) in [0, 1].
        scale_range (Sequence[float]): Range of the noise scale.
        gray_prob (float): Probability of grey (channel-shared) noise per sample.
        clip (bool): Clip to [0, 1].
        rounds (bool): Round to 8-bit levels.

    Returns:
        Tensor: Noisy images, (b, c, h, w).
    """
    from torchvision.transforms.functional import rgb_to_grayscale
    b, _, h, w = img.shape
    scale = torch.rand(b, dtype=img.dtype, device=img.device) * (scale_range[1] - scale_range[0]) + scale_range[0]
    gray = (torch.rand(b, dtype=img.dtype, device=img.device) < gray_prob).to(img.dtype).view(b, 1, 1, 1)
    use_gray = bool(gray.sum() > 0)
    if use_gray:
        noise_gray = _poisson(rgb_to_grayscale(img, num_output_channels=1)).expand(b, 3, h, w)
    noise = _poisson(img)
    if use_gray:
        noise = noise * (1 - gray) + noise_gray * gray
    out = img + noise * scale.view(b, 1, 1, 1)
    if rounds:
        out = (out * 255.0).round()
        out = (torch.clamp(out, 0, 255) if clip else out) / 255.
    elif clip:
        out = torch.clamp(out, 0, 1)
    return out


def indexed_pool(model):
    """The training-pair pool of ``RealESRGANModel._dequeue_and_enqueue`` without moving the pool in memory.

    The shipped pool permutes all of ``queue_lr`` and ``queue_gt`` every iteration; this one permutes an index
    array (``pool_order``: logical position -> storage slot) with the same ``torch.randperm`` and reads and writes
    only the ``b`` slots it hands out. Same pairs out, same pool contents in logical order.
    """
    b = model.lq.size(0)
    if not hasattr(model, 'queue_lr'):
        model.queue_lr = model.lq.new_zeros((model.queue_size, *model.lq.shape[1:]))
        model.queue_gt = model.gt.new_zeros((model.queue_size, *model.gt.shape[1:]))
        model.queue_ptr = 0
        model.pool_order = torch.arange(model.queue_size)
    if model.queue_ptr == model.queue_size:
        model.pool_order = model.pool_order[torch.randperm(model.queue_size)]
        slots = model.pool_order[:b].to(model.device)
        lq, gt = model.queue_lr[slots], model.queue_gt[slots]
        model.queue_lr[slots] = model.lq
        model.queue_gt[slots] = model.gt
        model.lq, model.gt = lq, gt
    else:
        slots = model.pool_order[model.queue_ptr:model.queue_ptr + b].to(model.device)
        model.queue_lr[slots] = model.lq
        model.queue_gt[slots] = model.gt
        model.queue_ptr += b


TUNINGS = ('usm', 'pool', 'poisson', 'trim', 'denormal')
# The tunings that pay on the CPU (docs/benchmarks.md): trimming the kernels and flushing denormals measured no gain.
DEFAULT_TUNINGS = ('usm', 'pool', 'poisson')


@contextlib.contextmanager
def tuned(model, parts=DEFAULT_TUNINGS):
    """Runs ``model.feed_data`` with the tuned parts named in ``parts`` (see the module docstring).

    Args:
        model: The model of :func:`build_model`.
        parts (Sequence[str]): Subset of :data:`TUNINGS`.
    """
    from basicsr.models import realesrgan_model
    unknown = set(parts) - set(TUNINGS)
    if unknown:
        raise ValueError(f'unknown tunings {sorted(unknown)}; choose from {TUNINGS}')
    saved_usm, saved_filter, saved_noise = model.usm_sharpener, realesrgan_model.filter2D, \
        realesrgan_model.random_add_poisson_noise_pt
    saved_denormal = torch.set_flush_denormal(False)  # returns whether it is supported, not the old state
    try:
        if 'usm' in parts:
            model.usm_sharpener = SeparableUSM().to(model.device)
        if 'pool' in parts:
            model._dequeue_and_enqueue = lambda: indexed_pool(model)
        if 'poisson' in parts:
            realesrgan_model.random_add_poisson_noise_pt = fast_poisson_noise
        if 'trim' in parts:
            realesrgan_model.filter2D = trimmed_filter2d
        if 'denormal' in parts and saved_denormal:
            torch.set_flush_denormal(True)
        yield model
    finally:
        model.usm_sharpener = saved_usm
        model.__dict__.pop('_dequeue_and_enqueue', None)
        realesrgan_model.filter2D = saved_filter
        realesrgan_model.random_add_poisson_noise_pt = saved_noise
        torch.set_flush_denormal(False)


def seed_everything(seed):
    """Seeds Python's, NumPy's and torch's global generators (all three are used by the pipeline)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def compare_pipelines(shipped_model, tuned_model, gt, steps=3, seed=0, parts=TUNINGS):
    """Runs both pipelines from the same pool and the same seeds; returns how much their outputs differ.

    The pre-pool degraded LR of every step and the pair handed to training are compared.

    Args:
        shipped_model, tuned_model: Two models of :func:`build_model` with the same pool size.
        gt (Tensor): (b, 3, H, W) ground truth on the models' device.
        steps (int): Iterations (the pool is full from the start, so every step shuffles).
        seed (int): Seed of the kernels and of the degradations.
        parts (Sequence[str]): Tunings to compare.

    Returns:
        dict: ``max_abs`` (largest difference of the degraded LR before the pool, in [0, 1] units),
        ``max_levels`` and ``fraction_changed`` (in 8-bit levels; ``lq`` is quantised to levels by the pipeline),
        ``pool_identical`` (whether the pairs handed to training are identical).
    """
    results = []
    for model, context in ((shipped_model, contextlib.nullcontext), (tuned_model, lambda: tuned(tuned_model, parts))):
        fill_pool(model, gt.shape, torch.Generator().manual_seed(seed))
        seed_everything(seed)
        sampler = KernelSampler()
        captured, handed = [], []
        with context():
            had_own = '_dequeue_and_enqueue' in model.__dict__  # the tuned pool is set on the instance
            original = model._dequeue_and_enqueue

            def capture(original=original, model=model, captured=captured):
                captured.append(model.lq.clone())
                original()

            model._dequeue_and_enqueue = capture
            try:
                for _ in range(steps):
                    lq, out_gt = shipped_step(model, sampler, gt)
                    handed.append((lq.clone(), out_gt.clone()))
            finally:
                if had_own:
                    model._dequeue_and_enqueue = original
                else:
                    del model._dequeue_and_enqueue
        results.append((captured, handed))
    (ref_lq, ref_pool), (new_lq, new_pool) = results
    diff = torch.cat([(a - b).abs().flatten() for a, b in zip(ref_lq, new_lq)])
    levels = (diff * 255).round()
    pool_identical = all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(ref_pool, new_pool))
    return {'max_abs': float(diff.max()), 'max_levels': int(levels.max()),
            'fraction_changed': float((levels > 0).float().mean()), 'pool_identical': pool_identical}
