"""Diffusion model with deterministic DDIM inversion and sampling, one of the reconstruction networks of the undersr
paper (§3.2).

Training uses the DDPM noise-prediction objective (Ho et al. 2020). Reconstruction inverts the input to noise with
deterministic DDIM steps and samples it back (Song et al. 2021, eta = 0); an undertrained noise predictor makes the
round trip imperfect, which gives the degraded LR.
"""
from collections import OrderedDict

from undersr.archs.arch_util import crop_to, group_norm, pad_to_multiple, randint, randn, timestep_embedding
from undersr.archs.recon_base import ReconstructionNet

import torch
import torch.nn as nn
import torch.nn.functional as F
from basicsr.utils.registry import ARCH_REGISTRY


class _ResBlock(nn.Module):
    """Residual block with a timestep embedding added between its two convolutions.

    Args:
        in_ch (int): Input channels.
        out_ch (int): Output channels.
        temb_dim (int): Width of the timestep embedding.
    """

    def __init__(self, in_ch, out_ch, temb_dim):
        super().__init__()
        self.norm1 = group_norm(in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb = nn.Linear(temb_dim, out_ch)
        self.norm2 = group_norm(out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x, temb):
        """Args: x (Tensor): (N, in_ch, H, W); temb (Tensor): (N, temb_dim). Returns: Tensor: (N, out_ch, H, W)."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return self.skip(x) + h


class _Attention(nn.Module):
    """Single-head self-attention over spatial positions with a residual connection. Shape-preserving."""

    def __init__(self, channels):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, channels * 3, 1)
        self.proj = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, c, h * w).transpose(2, 3).unbind(1)
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.proj(out.transpose(1, 2).reshape(n, c, h, w))


class _UNet(nn.Module):
    """Small UNet noise predictor eps(x_t, t).

    Args:
        in_channels (int): Image channels.
        base_channels (int): Channels at full resolution.
        channel_mults (tuple[int, ...]): Channel multiplier per resolution level; one 2x downsampling between levels.
        num_res_blocks (int): Residual blocks per level on each path.
        mid_attention (bool): One self-attention layer at the lowest resolution.
    """

    def __init__(self, in_channels, base_channels, channel_mults, num_res_blocks, mid_attention):
        super().__init__()
        self.base_channels = base_channels
        temb_dim = base_channels * 4
        self.time_mlp = nn.Sequential(nn.Linear(base_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim))
        chans = [base_channels * m for m in channel_mults]
        self.conv_in = nn.Conv2d(in_channels, chans[0], 3, padding=1)

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = chans[0]
        for i, out_ch in enumerate(chans):
            blocks = nn.ModuleList()
            for _ in range(num_res_blocks):
                blocks.append(_ResBlock(ch, out_ch, temb_dim))
                ch = out_ch
            self.down.append(blocks)
            last = i == len(chans) - 1
            self.downsample.append(nn.Identity() if last else nn.Conv2d(ch, ch, 3, stride=2, padding=1))

        self.mid1 = _ResBlock(ch, ch, temb_dim)
        self.mid_attn = _Attention(ch) if mid_attention else nn.Identity()
        self.mid2 = _ResBlock(ch, ch, temb_dim)

        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for i in reversed(range(len(chans))):
            blocks = nn.ModuleList([_ResBlock(ch + chans[i], chans[i], temb_dim)])
            ch = chans[i]
            for _ in range(num_res_blocks - 1):
                blocks.append(_ResBlock(ch, ch, temb_dim))
            self.up.append(blocks)
            self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1) if i > 0 else nn.Identity())

        self.norm_out = group_norm(ch)
        self.conv_out = nn.Conv2d(ch, in_channels, 3, padding=1)

    def forward(self, x, t):
        """Predicts the noise.

        Args:
            x (Tensor): Noisy images in [-1, 1] scale, (N, C, H, W), H and W multiples of the UNet stride.
            t (Tensor): Timesteps, (N,).

        Returns:
            Tensor: Predicted noise, (N, C, H, W).
        """
        temb = self.time_mlp(timestep_embedding(t, self.base_channels).to(x.dtype))
        h = self.conv_in(x)
        skips = []
        for blocks, down in zip(self.down, self.downsample):
            for blk in blocks:
                h = blk(h, temb)
            skips.append(h)
            h = down(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb)), temb)
        for blocks, up in zip(self.up, self.upsample):
            h = torch.cat([h, skips.pop()], dim=1)
            for blk in blocks:
                h = blk(h, temb)
            if not isinstance(up, nn.Identity):
                h = up(F.interpolate(h, scale_factor=2.0, mode='nearest'))
        return self.conv_out(F.silu(self.norm_out(h)))


@ARCH_REGISTRY.register()
class DDIM(ReconstructionNet):
    """Denoising diffusion model: small UNet noise predictor, linear beta schedule, DDIM inversion + sampling.

    The schedule is the linear one of Ho et al. 2020 (beta from 1e-4 to 0.02 over ``num_train_timesteps``), kept in
    non-persistent buffers (it is derived from the constructor arguments, so checkpoints hold only the UNet).

    Args:
        in_channels (int): Image channels.
        base_channels (int): UNet channels at full resolution.
        channel_mults (tuple[int, ...]): UNet channel multiplier per level; ``stride = 2 ** (len - 1)``.
        num_res_blocks (int): Residual blocks per level and path.
        num_train_timesteps (int): Diffusion steps T of the training schedule.
        num_inference_steps (int): DDIM steps of the inversion, and again of the sampling, in :meth:`reconstruct`
            (the paper uses 100 sampling steps).
        inversion_strength (float): In [0, 1]; the input is inverted up to
            ``t_max = round(inversion_strength * (T - 1))``. 0 returns the input unchanged.
        beta_start (float): First beta of the linear schedule.
        beta_end (float): Last beta of the linear schedule.
        mid_attention (bool): Add one self-attention layer at the UNet's lowest resolution (off by default: its cost
            grows with the square of the pixel count, which matters for large LR images).
    """

    def __init__(self, in_channels=3, base_channels=32, channel_mults=(1, 2, 2), num_res_blocks=1,
                 num_train_timesteps=1000, num_inference_steps=100, inversion_strength=1.0, beta_start=1e-4,
                 beta_end=0.02, mid_attention=False):
        super().__init__()
        self.num_levels = len(channel_mults)
        self.num_train_timesteps = int(num_train_timesteps)
        self.num_inference_steps = int(num_inference_steps)
        self.inversion_strength = float(inversion_strength)
        self.unet = _UNet(in_channels, base_channels, tuple(channel_mults), num_res_blocks, mid_attention)
        # Ho et al. 2020, §4: linear schedule; alpha_bar_t = prod_{s <= t} (1 - beta_s). Computed in float64.
        betas = torch.linspace(beta_start, beta_end, self.num_train_timesteps, dtype=torch.float64)
        alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
        self.register_buffer('betas', betas.float(), persistent=False)
        self.register_buffer('alphas_cumprod', alphas_cumprod.float(), persistent=False)

    @property
    def stride(self):
        """int: H and W must be multiples of this (``2 ** (len(channel_mults) - 1)``)."""
        return 2**(self.num_levels - 1)

    def add_noise(self, x0, eps, t):
        """Samples q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (Ho et al. 2020, Eq. 4).

        Args:
            x0 (Tensor): Clean images in [-1, 1], (N, C, H, W).
            eps (Tensor): Noise, (N, C, H, W).
            t (Tensor): Integer timesteps, (N,).

        Returns:
            Tensor: x_t, (N, C, H, W).
        """
        ab = self.alphas_cumprod[t].to(x0.dtype)[:, None, None, None]
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def forward(self, x, generator=None):
        """Training pass of the DDPM objective (Ho et al. 2020, Alg. 1): the loss is ``||eps_pred - eps||^2``.

        Args:
            x (Tensor): Images in [0, 1], (N, C, H, W), H and W multiples of ``stride``.
            generator (torch.Generator | None): Random source for t and eps.

        Returns:
            dict: ``'eps_pred'`` and ``'eps'``, each (N, C, H, W); ``'t'`` (N,) the sampled timesteps.
        """
        n = x.shape[0]
        t = randint(self.num_train_timesteps, (n,), generator, device=x.device)
        eps = randn(x.shape, generator, device=x.device, dtype=x.dtype)
        x_t = self.add_noise(x * 2 - 1, eps, t)
        return {'eps_pred': self.unet(x_t, t), 'eps': eps, 't': t}

    def loss(self, x, out):
        """The simplified DDPM objective (Ho et al. 2020, Eq. 14): MSE between predicted and true noise.

        Args:
            x (Tensor): (N, C, H, W) input batch in [0, 1].
            out (dict): What :meth:`forward` returned for ``x``.

        Returns:
            OrderedDict[str, Tensor]: ``l_eps``.
        """
        return OrderedDict(l_eps=F.mse_loss(out['eps_pred'], out['eps']))

    def inference_timesteps(self, num_inference_steps=None, inversion_strength=None):
        """The timestep grid of :meth:`reconstruct`.

        ``num_inference_steps + 1`` evenly spaced integers from 0 to ``t_max``, rounded; duplicates (only when
        ``t_max < num_inference_steps``) are dropped, so then only ``t_max`` steps run.

        Args:
            num_inference_steps (int | None): Overrides the constructor value.
            inversion_strength (float | None): Overrides the constructor value.

        Returns:
            list[int]: Increasing timesteps starting with 0; the number of steps is its length minus one.
        """
        steps = self.num_inference_steps if num_inference_steps is None else int(num_inference_steps)
        strength = self.inversion_strength if inversion_strength is None else float(inversion_strength)
        if steps < 1 or not 0.0 <= strength <= 1.0:
            raise ValueError(f'DDIM: need num_inference_steps >= 1 and inversion_strength in [0, 1], got {steps}, '
                             f'{strength}')
        t_max = round(strength * (self.num_train_timesteps - 1))
        grid = torch.linspace(0, t_max, steps + 1, dtype=torch.float64).round().long().tolist()
        return sorted(set(grid))

    def _ddim_step(self, x, t_from, a_from, a_to):
        """One deterministic DDIM update between two noise levels (Song et al. 2021, Eq. 12 with eta = 0).

        ``x_to = sqrt(a_to) * x0_pred + sqrt(1 - a_to) * eps`` with ``x0_pred = (x - sqrt(1 - a_from) * eps) /
        sqrt(a_from)`` and ``eps`` predicted at ``(x, t_from)``; used in both directions (inversion and sampling).

        Args:
            x (Tensor): Current state, float32, (N, C, H, W).
            t_from (int): Timestep the UNet is queried at.
            a_from (float): alpha_bar of the current state.
            a_to (float): alpha_bar of the target state.

        Returns:
            Tensor: New state, float32, (N, C, H, W).
        """
        t = torch.full((x.shape[0],), t_from, device=x.device, dtype=torch.long)
        eps = self.unet(x, t).float()
        x0_pred = (x - (1.0 - a_from) ** 0.5 * eps) / a_from**0.5
        return a_to**0.5 * x0_pred + (1.0 - a_to) ** 0.5 * eps

    @torch.no_grad()
    def reconstruct(self, x, generator=None, num_inference_steps=None, inversion_strength=None):
        """DDIM inversion of the input up to ``t_max`` followed by DDIM sampling back to x_0; any H and W.

        undersr paper §3.2: the LR image is reconstructed through the (undertrained) diffusion model. Both passes are
        deterministic (eta = 0), so the result does not depend on ``generator``. The clean image is the state with
        alpha = 1 (Song et al. 2021, alpha_0 := 1); the noise predictor is queried at the grid timestep of the state
        it is applied to, so inversion and sampling each call the UNet once per step.

        Args:
            x (Tensor): Images in [0, 1], (N, C, H, W), any H and W.
            generator (torch.Generator | None): Unused (deterministic); kept for the common interface.
            num_inference_steps (int | None): Overrides the constructor value.
            inversion_strength (float | None): Overrides the constructor value.

        Returns:
            Tensor: Reconstruction in [0, 1], (N, C, H, W).
        """
        grid = self.inference_timesteps(num_inference_steps, inversion_strength)
        if len(grid) == 1:
            return x.clamp(0, 1)
        xp, size = pad_to_multiple(x, self.stride)
        ab = self.alphas_cumprod.double().cpu()
        alphas = [1.0] + [float(ab[t]) for t in grid[1:]]
        # The trajectory stays in float32 even under autocast; only the UNet's layers run in the autocast dtype.
        h = xp.float() * 2 - 1
        for k in range(len(grid) - 1):  # Song et al. 2021, Eq. 12 run backwards: x_{t_k} -> x_{t_{k+1}}
            h = self._ddim_step(h, grid[k], alphas[k], alphas[k + 1])
        for k in range(len(grid) - 1, 0, -1):  # Song et al. 2021, Eq. 12: x_{t_k} -> x_{t_{k-1}}
            h = self._ddim_step(h, grid[k], alphas[k], alphas[k - 1])
        out = (h + 1) / 2
        return crop_to(out, size).clamp(0, 1).to(x.dtype)
