"""Test-time tiling for SR networks, so that large benchmark images fit in memory.

HAT or SwinIR on a 2K LR image (an 8K output) needs far more memory than one GPU has, because attention and the
upsampler's feature maps grow with the image. With the option

.. code-block:: yaml

    tile:
      tile_size: 256   # LR pixels per tile side
      tile_pad: 16     # LR pixels of context added on every side of a tile (cut off again after the network)

the LR image is cut into ``tile_size`` × ``tile_size`` tiles; each is run with ``tile_pad`` pixels of its
neighbours around it (fewer at the image border, where the network sees the real border as in an untiled run),
and only the tile's own part of the output is kept. For a convolutional network (EDSR, RRDBNet) whose receptive
field reaches at most ``tile_pad`` LR pixels, the result equals the untiled output up to floating-point rounding.
Transformers see slightly different context at tile seams, as with every tiled inference.

Without ``tile`` (or with ``tile: ~``) the whole image is run at once. Either way the input (whole image or padded
tile) is reflect-padded at its bottom and right to a multiple of ``tile.pad_multiple`` (default:
``network_g.window_size`` when the network has one, else 1), which window-attention networks such as HAT and
SwinIR need, and the output is cropped back. ``net_g_ema`` is used when the model has one.

This module has no ``_model.py`` suffix: it holds :class:`TiledTestMixin` and the plain functions, and the
registered models (``TiledSRModel``, ``HATModel``, ...) put the mixin in front of a BasicSR model class.
"""
import difflib

from undersr.archs.arch_util import crop_to, pad_to_multiple

import torch

TILE_OPTIONS = ('tile_size', 'tile_pad', 'pad_multiple')


def tile_boxes(height, width, tile_size, tile_pad):
    """The tiles of an image and their padded input windows, in LR pixels.

    Args:
        height (int): Image height H.
        width (int): Image width W.
        tile_size (int): Tile side; the last row and column of tiles may be smaller.
        tile_pad (int): Context on each side, clipped at the image border.

    Returns:
        list[tuple[tuple[int, int, int, int], tuple[int, int, int, int]]]: For each tile,
        ``(top, left, bottom, right)`` of the tile and of its padded window (bottom/right exclusive).
    """
    boxes = []
    for top in range(0, height, tile_size):
        for left in range(0, width, tile_size):
            bottom, right = min(top + tile_size, height), min(left + tile_size, width)
            window = (max(top - tile_pad, 0), max(left - tile_pad, 0), min(bottom + tile_pad, height),
                      min(right + tile_pad, width))
            boxes.append(((top, left, bottom, right), window))
    return boxes


def padded_forward(net, x, scale, pad_multiple=1):
    """Runs ``net`` on ``x`` padded at the bottom/right to ``pad_multiple`` and crops the output back.

    Args:
        net (nn.Module): SR network, (N, C, h, w) -> (N, C', h * scale, w * scale).
        x (Tensor): (N, C, h, w).
        scale (int): Upscaling factor of ``net``.
        pad_multiple (int): Multiple that ``net`` needs for H and W (e.g. its window size).

    Returns:
        Tensor: (N, C', h * scale, w * scale).
    """
    padded, (h, w) = pad_to_multiple(x, pad_multiple)
    return crop_to(net(padded), (h * scale, w * scale))


def tiled_forward(net, x, scale, tile_size=None, tile_pad=0, pad_multiple=1):
    """Runs ``net`` on ``x`` tile by tile (see the module docstring); ``tile_size=None`` runs it whole.

    Args:
        net (nn.Module): SR network, (N, C, h, w) -> (N, C', h * scale, w * scale).
        x (Tensor): (N, C, H, W) LR images.
        scale (int): Upscaling factor of ``net``.
        tile_size (int | None): Tile side in LR pixels.
        tile_pad (int): Context around each tile in LR pixels.
        pad_multiple (int): See :func:`padded_forward`.

    Returns:
        Tensor: (N, C', H * scale, W * scale).
    """
    if tile_size is None:
        return padded_forward(net, x, scale, pad_multiple)
    h, w = x.shape[-2:]
    out = None
    for (top, left, bottom, right), (w_top, w_left, w_bottom, w_right) in tile_boxes(h, w, tile_size, tile_pad):
        y = padded_forward(net, x[..., w_top:w_bottom, w_left:w_right], scale, pad_multiple)
        if out is None:
            out = y.new_zeros(x.shape[0], y.shape[1], h * scale, w * scale)
        dy, dx = (top - w_top) * scale, (left - w_left) * scale
        out[..., top * scale:bottom * scale, left * scale:right * scale] = \
            y[..., dy:dy + (bottom - top) * scale, dx:dx + (right - left) * scale]
    return out


def parse_tile_options(opt, model_name):
    """Checks the ``tile`` option of ``opt``; returns ``(tile_size | None, tile_pad, pad_multiple)``.

    Raises:
        ValueError: ``tile`` is not a mapping, has unknown keys (the message names them and the valid ones) or
            invalid values.
    """
    tile = opt.get('tile') or {}
    if not isinstance(tile, dict):
        raise ValueError(f'{model_name}: option `tile` must be a mapping like {{tile_size: 256, tile_pad: 16}} or ~, '
                         f'got {tile!r}')
    unknown = sorted(set(tile) - set(TILE_OPTIONS))
    if unknown:
        nearest = {k: difflib.get_close_matches(str(k), TILE_OPTIONS, n=1) for k in unknown}
        hints = ''.join(f'; `{k}`: did you mean `{m[0]}`?' for k, m in nearest.items() if m)
        raise ValueError(f'{model_name}: unknown `tile` options {unknown}{hints} (known: {", ".join(TILE_OPTIONS)})')
    tile_size = tile.get('tile_size')
    tile_pad = int(tile.get('tile_pad', 0))
    pad_multiple = int(tile.get('pad_multiple') or opt['network_g'].get('window_size') or 1)
    if tile_size is not None and int(tile_size) < 1 or tile_pad < 0 or pad_multiple < 1:
        raise ValueError(f'{model_name}: need tile_size >= 1, tile_pad >= 0 and pad_multiple >= 1, got {tile}')
    return (None if tile_size is None else int(tile_size)), tile_pad, pad_multiple


class TiledTestMixin:
    """Makes a BasicSR model's :meth:`test` pad and tile (option ``tile``, see the module docstring).

    Put it first among the bases, e.g. ``class M(TiledTestMixin, SRModel)``; training stays the BasicSR model's.
    """

    def __init__(self, opt):
        super().__init__(opt)
        self.tile_size, self.tile_pad, self.pad_multiple = parse_tile_options(opt, type(self).__name__)

    def test(self):
        """Sets ``self.output`` (N, C, H * scale, W * scale) from ``self.lq`` (N, C, H, W)."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        with torch.no_grad():
            self.output = tiled_forward(net, self.lq, self.opt['scale'], self.tile_size, self.tile_pad,
                                        self.pad_multiple)
        net.train(was_training)
