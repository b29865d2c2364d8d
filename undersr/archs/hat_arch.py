"""HAT (Chen et al., "Activating More Pixels in Image Super-Resolution Transformer", CVPR 2023).

We do not re-implement HAT: spandrel's implementation is weight-compatible with the official XPixelGroup code.
This module only gives it the official constructor, so official HAT option files and ``.pth`` files work
unchanged through ``ARCH_REGISTRY``.
"""
from basicsr.utils.registry import ARCH_REGISTRY
from spandrel.architectures.HAT import HAT as SpandrelHAT


@ARCH_REGISTRY.register()
class HAT(SpandrelHAT):
    """Hybrid Attention Transformer with the official arguments and state-dict keys.

    Defaults are the official ones, except ``upsampler`` (official: ``''``, which no released model uses).
    Input ``(N, in_chans, H, W)`` in ``[0, 1]``, any H and W (padded to ``window_size`` internally);
    output ``(N, in_chans, H * upscale, W * upscale)``.

    Args:
        upscale (int): Scale factor: 2, 3, 4 or 8 (1 for restoration).
        in_chans (int): Image channels.
        img_size (int): Training patch size; only used to size buffers.
        window_size (int): Attention window size.
        compress_ratio (int): Channel compression of the convolution branch.
        squeeze_factor (int): Squeeze factor of channel attention.
        conv_scale (float): Weight of the convolution branch.
        overlap_ratio (float): Window overlap of the overlapping cross-attention.
        img_range (float): Pixel range the network works in (1 or 255).
        depths (list[int]): Blocks per residual hybrid attention group.
        embed_dim (int): Feature channels.
        num_heads (list[int]): Attention heads per group.
        mlp_ratio (float): MLP hidden width relative to ``embed_dim``.
        upsampler (str): Only ``'pixelshuffle'``, which every official HAT SR model uses.
        resi_connection (str): ``'1conv'`` or ``'3conv'``.
        **kwargs: Further official arguments (``drop_path_rate``, ``qkv_bias``, ``patch_norm``, ...).
    """

    def __init__(self, upscale=2, in_chans=3, img_size=64, window_size=7, compress_ratio=3, squeeze_factor=30,
                 conv_scale=0.01, overlap_ratio=0.5, img_range=1., depths=(6, 6, 6, 6), embed_dim=96,
                 num_heads=(6, 6, 6, 6), mlp_ratio=4., upsampler='pixelshuffle', resi_connection='1conv', **kwargs):
        if upsampler != 'pixelshuffle':
            raise ValueError(f"HAT: upsampler {upsampler!r} is not supported; use 'pixelshuffle' as the official "
                             'HAT SR models do.')
        super().__init__(
            upscale=upscale, in_chans=in_chans, img_size=img_size, window_size=window_size,
            compress_ratio=compress_ratio, squeeze_factor=squeeze_factor, conv_scale=conv_scale,
            overlap_ratio=overlap_ratio, img_range=img_range, depths=list(depths), embed_dim=embed_dim,
            num_heads=list(num_heads), mlp_ratio=mlp_ratio, upsampler=upsampler, resi_connection=resi_connection,
            **kwargs)
