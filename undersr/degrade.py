"""The method in one place: HR → bicubic ×s → undertrained reconstruction → degraded LR (paper §3).

:class:`Degrader` is the only implementation of the degradation; ``undersr generate``, the on-the-fly dataset and
the on-the-fly model all call it.
"""
import contextlib
import hashlib
import os
from dataclasses import dataclass

from undersr.archs.recon_base import load_reconstruction
from undersr.color import match_lab_stats
from undersr.image_io import to_uint8
from undersr.resize import bicubic_downsample

import numpy as np
import torch

COLOR_CORRECTIONS = ('none', 'lab-stats')
AMP_MODES = ('auto', 'bf16', 'fp16', None)
MASK_RATIO_MODES = ('train', 'checkpoint')
_AMP_DTYPES = {'bf16': torch.bfloat16, 'fp16': torch.float16}
# Networks that run faster in channels_last on the CPU (docs/benchmarks.md: 1.2-1.6x for these with one thread,
# none or a loss for VQVAE and MAE). On CUDA channels_last is used for every network.
CPU_CHANNELS_LAST = frozenset({'VQVAE2', 'VanillaVAE', 'DDIM'})


def file_sha256(path, chunk=1 << 20):
    """Hex SHA-256 of a file, for manifests."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(chunk), b''):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ReconSource:
    """One (model, epoch) source of degradations."""
    path: str
    net: torch.nn.Module
    network_type: str
    epoch: int
    reconstruct: object = None  # net.reconstruct, or its torch.compile'd version
    channels_last: bool = False  # whether net and its inputs use the channels_last memory format

    @property
    def name(self):
        return f'{self.network_type}@ep{self.epoch}'

    def describe(self):
        """JSON-ready description with the checkpoint's hash (and the mask ratio of a masking network)."""
        info = {'name': self.name, 'path': os.path.abspath(self.path), 'type': self.network_type,
                'epoch': self.epoch, 'sha256': file_sha256(self.path)}
        if hasattr(self.net, 'set_recon_mask_ratio'):
            info['recon_mask_ratio'] = self.net.recon_mask_ratio
        return info


class Degrader:
    """Maps HR batches to (clean LR, degraded LR) with one or more undertrained reconstruction networks.

    Each sample draws its own source with the given probabilities from its own seed, and any randomness of the
    reconstruction (MAE with masking) also comes from that seed; no batch statistics are involved. So a sample's
    output depends only on its pixels and its seed, not on the rest of the batch.

    Args:
        recon (Sequence[str]): Reconstruction checkpoints (``net_g_ep<N>.pth`` of ``ReconstructionModel``).
        weights (Sequence[float] | None): Probabilities of the sources (normalised); default uniform.
        scale (int): Downsampling factor of the bicubic step.
        color_correct (str): ``'none'`` or ``'lab-stats'`` (match the degraded LR's per-image CIELAB mean and
            standard deviation to the clean LR's; the paper, §4.3, finds that colour shift hurts SR training).
        device (str | torch.device): Where the networks run.
        channels_last (bool | None): Run the networks in the channels_last memory format. ``None`` (auto): on CUDA
            always, on the CPU for the networks in :data:`CPU_CHANNELS_LAST` (measured faster there). The output
            changes only by float rounding (about 1e-7 for the VQ models; DDIM's step-by-step inversion amplifies
            rounding to a few 1e-2, as any change of convolution algorithm does).
        amp (str | None): Autocast of the networks: ``'bf16'``, ``'fp16'``, ``'auto'`` (bf16 on a CUDA device that
            supports it, otherwise none; never on the CPU) or ``None`` (float32, the default: bit-reproducible).
            The codebook search of the VQ models always runs in float32. :func:`amp_deviation` measures what
            autocast changes in 8-bit levels.
        compile (bool): Wrap each network's ``reconstruct`` in :func:`torch.compile` (the first batch of every new
            shape compiles, which takes tens of seconds; needs a C++ compiler on the CPU).
        recon_mask_ratio (str | float): Masking of the networks that mask their input (MAE; others ignore it):
            ``'train'`` (default) masks the fraction each network was trained with (its ``mask_ratio``, 0.75 in
            our options), the closest to the paper, whose MAE "reconstructs the whole image, not only the masked
            patches" (§3.2) and adds sparse, patch-wise degradations: the whole decoder output is the degraded LR,
            and each sample's mask comes from its seed. ``'checkpoint'`` keeps the checkpoint's own
            ``recon_mask_ratio`` (0.0 in our options: nothing masked, the behaviour before this option). A number
            in [0, 1) masks that fraction. See docs/paper-choices.md.
        strength (float | None): ``None`` (default, the paper): the reconstruction is the degraded LR. A number in
            (0, 1]: each sample blends it with its clean LR, ``lq = clean + s * (reconstruction - clean)``, with
            ``s`` drawn uniformly from [0, strength] from the sample's seed. This makes the degradation milder in
            fine steps and spreads it over a range, where the paper's own knob, the checkpoint epoch, moves it only
            in coarse steps (``docs/demo-choices.md`` measures both); colour correction applies before the blend.
    """

    def __init__(self, recon, weights=None, scale=4, color_correct='none', device='cpu', channels_last=None,
                 amp=None, compile=False, recon_mask_ratio='train', strength=None):
        if not recon:
            raise ValueError('Degrader needs at least one reconstruction checkpoint')
        if color_correct not in COLOR_CORRECTIONS:
            raise ValueError(f'color_correct must be one of {COLOR_CORRECTIONS}, got {color_correct!r}')
        weights = [1.0] * len(recon) if weights is None else [float(w) for w in weights]
        if len(weights) != len(recon) or min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f'need one non-negative weight per checkpoint ({len(recon)}), got {weights}')
        if strength is not None and not 0 < float(strength) <= 1:
            raise ValueError(f'strength must be ~ (none) or a number in (0, 1], got {strength!r}')
        if amp not in AMP_MODES:
            raise ValueError(f'amp must be one of {AMP_MODES}, got {amp!r}')
        self.device = torch.device(device)
        self.amp_dtype = resolve_amp(amp, self.device)
        self.sources = []
        for path in recon:
            net, meta = load_reconstruction(path, self.device)
            set_mask_ratio(net, recon_mask_ratio)
            source = ReconSource(path, net, meta['network_g']['type'], meta['epoch'])
            source.channels_last = use_channels_last(channels_last, self.device, source.network_type)
            if source.channels_last:
                net.to(memory_format=torch.channels_last)
            source.reconstruct = torch.compile(net.reconstruct) if compile else net.reconstruct
            self.sources.append(source)
        self.probs = torch.tensor(weights, dtype=torch.float64) / sum(weights)
        self.scale = int(scale)
        self.color_correct = color_correct
        self.strength = None if strength is None else float(strength)

    def choose(self, seeds):
        """Source index of each sample, drawn from its seed: (N,) long tensor on the CPU."""
        return torch.stack([torch.multinomial(self.probs, 1, generator=torch.Generator().manual_seed(int(s)))[0]
                            for s in seeds])

    def blend_weights(self, seeds):
        """Each sample's ``s`` (see ``strength``), drawn from its seed: (N,) float tensor on the CPU."""
        if self.strength is None:
            return torch.ones(len(seeds))
        # a stream of its own (seed, 1), independent of the source draw in choose()
        return torch.tensor([np.random.default_rng([int(s), 1]).uniform(0, self.strength) for s in seeds],
                            dtype=torch.float32)

    @torch.inference_mode()
    def degrade_lr(self, lr, seeds):
        """Degrades clean LR images.

        Args:
            lr (Tensor): (N, 3, h, w) RGB in [0, 1].
            seeds (Sequence[int]): One seed per sample.

        Returns:
            dict: ``lq`` degraded LR (N, 3, h, w) on ``lr``'s device; ``lq_raw``, the reconstruction before colour
            correction and ``strength``'s blend (the same tensor when there is neither); ``source``, the source
            index of each sample, (N,) long on the CPU.
        """
        choice = self.choose(seeds)
        out = None
        for index, source in enumerate(self.sources):
            members = (choice == index).nonzero().flatten().tolist()
            if not members:
                continue
            whole = len(members) == len(lr)  # one source for the batch: no gather, no scatter
            x = (lr if whole else lr[members]).to(self.device)
            if source.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                if getattr(source.net, 'deterministic', True):
                    y = source.reconstruct(x)
                else:  # stochastic reconstruction: one generator per sample keeps samples independent
                    y = torch.cat([source.reconstruct(
                        x[i:i + 1], generator=torch.Generator(self.device).manual_seed(int(seeds[m])))
                        for i, m in enumerate(members)])
            y = y.to(lr.device, lr.dtype, memory_format=torch.contiguous_format)
            if whole:
                out = y
            else:
                if out is None:
                    out = torch.empty_like(lr, memory_format=torch.contiguous_format)
                out[members] = y
        lq = match_lab_stats(out, lr) if self.color_correct == 'lab-stats' else out
        if self.strength is not None:
            lq = blend(lr, lq, self.blend_weights(seeds).to(lr.device, lr.dtype).view(-1, 1, 1, 1))
        return {'lq': lq, 'lq_raw': out, 'source': choice}

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def __call__(self, hr, seeds):
        """HR → clean LR → degraded LR.

        Args:
            hr (Tensor): (N, 3, H, W) RGB in [0, 1], H and W divisible by ``scale``.
            seeds (Sequence[int]): One seed per sample.

        Returns:
            dict: ``lq_clean`` (the bicubic LR) and those of :meth:`degrade_lr`, images (N, 3, H/scale, W/scale)
            on ``hr``'s device.
        """
        with torch.inference_mode():
            clean = bicubic_downsample(hr, self.scale).clamp(0, 1)
        return {'lq_clean': clean, **self.degrade_lr(clean, seeds)}


def blend(clean, degraded, s):
    """``Degrader``'s ``strength`` blend: ``clean + s * (degraded - clean)``.

    Args:
        clean (Tensor): (N, 3, h, w) clean LR.
        degraded (Tensor): (N, 3, h, w) degraded LR.
        s (float | Tensor): Blend factor(s) in [0, 1], e.g. (N, 1, 1, 1).
    """
    return clean + s * (degraded - clean)


def set_mask_ratio(net, recon_mask_ratio):
    """Applies :class:`Degrader`'s ``recon_mask_ratio`` option to a network that masks its input (MAE).

    Raises:
        ValueError: ``recon_mask_ratio`` is neither ``'train'``, ``'checkpoint'`` nor a number in [0, 1).
    """
    if recon_mask_ratio not in MASK_RATIO_MODES:
        try:
            float(recon_mask_ratio)
        except (TypeError, ValueError):
            raise ValueError(f"recon_mask_ratio must be 'train', 'checkpoint' or a number in [0, 1), got "
                             f'{recon_mask_ratio!r}') from None
    if not hasattr(net, 'set_recon_mask_ratio') or recon_mask_ratio == 'checkpoint':
        return
    net.set_recon_mask_ratio(net.mask_ratio if recon_mask_ratio == 'train' else recon_mask_ratio)


def resolve_amp(amp, device):
    """The autocast dtype that ``amp`` means on ``device`` (see :class:`Degrader`), or ``None`` for float32."""
    device = torch.device(device)
    if amp == 'auto':
        if device.type == 'cuda' and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    return _AMP_DTYPES.get(amp)


def use_channels_last(channels_last, device, network_type):
    """Whether :class:`Degrader` runs ``network_type`` in channels_last on ``device`` (``None`` means auto)."""
    if channels_last is not None:
        return bool(channels_last)
    return torch.device(device).type == 'cuda' or network_type in CPU_CHANNELS_LAST


def amp_deviation(recon, hr, seeds, amp='bf16', device='cpu', scale=4, **options):
    """How much autocast changes the degraded LR, in 8-bit levels.

    Degrades ``hr`` twice with the same seeds, in float32 and with ``amp``, and compares the two ``lq`` after
    quantisation to uint8 (what ``undersr generate`` writes).

    Args:
        recon (Sequence[str]): Reconstruction checkpoints, as for :class:`Degrader`.
        hr (Tensor): (N, 3, H, W) RGB in [0, 1].
        seeds (Sequence[int]): One seed per sample.
        amp (str): Autocast mode under test (``'bf16'``, ``'fp16'`` or ``'auto'``).
        device (str | torch.device): Where both degraders run.
        scale (int): Downscaling factor.
        **options: Further :class:`Degrader` arguments, the same for both (e.g. ``channels_last``).

    Returns:
        dict: ``max_levels`` (largest absolute difference, in levels of 1/255), ``mean_levels``,
        ``fraction_changed`` (share of values that differ at all) and ``within_one_level``
        (``max_levels <= 1``: the output differs from float32 by at most 1/255).
    """
    reference = Degrader(recon, scale=scale, device=device, amp=None, **options)(hr, seeds)['lq']
    candidate = Degrader(recon, scale=scale, device=device, amp=amp, **options)(hr, seeds)['lq']
    return compare_levels(reference, candidate)


def compare_levels(reference, candidate):
    """Differences of two image batches in [0, 1] after quantisation to 8-bit levels (see :func:`amp_deviation`).

    Returns:
        dict: ``max_levels``, ``mean_levels``, ``fraction_changed``, ``within_one_level``.
    """
    diff = (to_uint8(reference).to(torch.int16) - to_uint8(candidate).to(torch.int16)).abs()
    max_levels = int(diff.max()) if diff.numel() else 0
    return {'max_levels': max_levels, 'mean_levels': float(diff.float().mean()) if diff.numel() else 0.0,
            'fraction_changed': float((diff > 0).float().mean()) if diff.numel() else 0.0,
            'within_one_level': max_levels <= 1}
