"""Gaussian noise on a share of LR images, for pre-training recipes that teach an SR model not to sharpen noise.

One implementation for both places that add it: ``NoisyPairedImageDataset`` (bicubic LR read from disk) and the
``lq_noise`` option of the ``Undertrained*Model`` classes (LR degraded on the fly), so that a fine-tune can keep
exactly the noise its pre-training saw (docs/demo-choices.md, sections 8 and 10).
"""
import torch


class GaussianNoise:
    """With probability ``noise_prob`` per image, adds Gaussian noise of σ ~ U[low, high] / 255, then clips and rounds
    to 8 bits, as a saved photo would be. Images not drawn are returned unchanged.

    Randomness comes from torch's global generator on the images' device, which BasicSR seeds from
    ``manual_seed`` (and torch seeds per data-loader worker).

    Args:
        noise_prob (float): Share of images that get noise, in [0, 1].
        noise_range (Sequence[float]): ``[low, high]``, σ in 8-bit units with 0 ≤ low ≤ high (Real-ESRGAN's
            ``noise_range`` convention).
        owner (str): Named in error messages (the dataset or model whose options these are).

    Raises:
        ValueError: A missing option, ``noise_prob`` outside [0, 1] or a malformed ``noise_range``.
    """

    def __init__(self, noise_prob, noise_range, owner='GaussianNoise'):
        try:
            self.prob = float(noise_prob)
            values = [float(v) for v in noise_range]
        except (TypeError, ValueError):
            values = None
        if values is None or len(values) != 2 or not 0 <= values[0] <= values[1]:
            raise ValueError(f'{owner}: noise_range must be [low, high] with 0 <= low <= high (σ in 8-bit units) and '
                             f'noise_prob a number in [0, 1]; got noise_range {noise_range!r}, noise_prob '
                             f'{noise_prob!r}')
        if not 0 <= self.prob <= 1:
            raise ValueError(f'{owner}: noise_prob must be in [0, 1], got {noise_prob!r}')
        self.low, self.high = values

    def __call__(self, lq):
        """Args: lq (Tensor): (N, C, h, w) in [0, 1]. Returns: Tensor: (N, C, h, w), a new tensor."""
        n = lq.size(0)
        drawn = (torch.rand(n, device=lq.device) < self.prob).nonzero().flatten()
        out = lq.clone()
        if len(drawn):
            sigma = torch.empty(len(drawn), 1, 1, 1, device=lq.device).uniform_(self.low, self.high) / 255
            noisy = lq[drawn] + sigma * torch.randn_like(lq[drawn])
            out[drawn] = (noisy.clamp(0, 1) * 255).round().to(lq.dtype) / 255
        return out
