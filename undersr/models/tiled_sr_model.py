"""``TiledSRModel``: BasicSR's ``SRModel`` with test-time tiling, so large benchmark images fit in memory.

HAT or SwinIR on a 2K LR image (an 8K output) needs far more memory than one GPU has, because attention and the
upsampler's feature maps grow with the image. With

.. code-block:: yaml

    model_type: TiledSRModel
    tile:
      tile_size: 256   # LR pixels per tile side
      tile_pad: 16     # LR pixels of context added on every side of a tile (cut off again after the network)

the LR image is cut into ``tile_size`` × ``tile_size`` tiles; each is run with ``tile_pad`` pixels of its
neighbours around it (fewer at the image border, where the network sees the real border as in an untiled run),
and only the tile's own part of the output is kept. For a convolutional network (EDSR, RRDBNet) whose receptive
field reaches at most ``tile_pad`` LR pixels, the result equals the untiled output up to floating-point rounding.
Transformers see slightly different context at tile seams, as with every tiled inference.

Without ``tile`` (or with ``tile: ~``) the whole image is run at once, as in ``SRModel``. Either way the input
(whole image or padded tile) is reflect-padded at its bottom and right to a multiple of ``tile.pad_multiple``
(default: ``network_g.window_size`` when the network has one, else 1), which window-attention networks such as
BasicSR's SwinIR need, and the output is cropped back. ``net_g_ema`` is used when the model has one.

Importing this module also registers the ``calculate_lpips`` metric (:mod:`undersr.lpips_metric`).
"""
import undersr.lpips_metric  # noqa: F401  (registers calculate_lpips whenever the models are registered)
from undersr.archs.arch_util import pad_to_multiple

import torch
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY


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


@MODEL_REGISTRY.register()
class TiledSRModel(SRModel):
    """``SRModel`` whose :meth:`test` runs the network tile by tile (option ``tile``, see the module docstring).

    Training is ``SRModel``'s; only inference (testing and validation during training) changes.
    """

    def __init__(self, opt):
        super().__init__(opt)
        tile = opt.get('tile') or {}
        if not isinstance(tile, dict):
            raise ValueError(f'TiledSRModel: option `tile` must be a mapping like {{tile_size: 256, tile_pad: 16}} '
                             f'or ~, got {tile!r}')
        unknown = set(tile) - {'tile_size', 'tile_pad', 'pad_multiple'}
        if unknown:
            raise ValueError(f'TiledSRModel: unknown `tile` options {sorted(unknown)} (known: tile_size, tile_pad, '
                             'pad_multiple)')
        self.tile_size = tile.get('tile_size')
        self.tile_pad = int(tile.get('tile_pad', 0))
        self.pad_multiple = int(tile.get('pad_multiple') or opt['network_g'].get('window_size') or 1)
        if self.tile_size is not None and int(self.tile_size) < 1 or self.tile_pad < 0 or self.pad_multiple < 1:
            raise ValueError(f'TiledSRModel: need tile_size >= 1, tile_pad >= 0 and pad_multiple >= 1, got {tile}')
        self.tile_size = None if self.tile_size is None else int(self.tile_size)

    def _forward(self, net, x):
        """Runs ``net`` on ``x`` (N, C, h, w) padded to ``pad_multiple``; returns (N, C', h * s, w * s)."""
        h, w = x.shape[-2:]
        scale = self.opt['scale']
        return net(pad_to_multiple(x, self.pad_multiple)[0])[..., :h * scale, :w * scale]

    def tiled_forward(self, net, x):
        """Runs ``net`` on ``x`` (N, C, H, W) tile by tile; returns (N, C', H * scale, W * scale)."""
        scale = self.opt['scale']
        h, w = x.shape[-2:]
        out = None
        for (top, left, bottom, right), (w_top, w_left, w_bottom, w_right) in tile_boxes(
                h, w, self.tile_size, self.tile_pad):
            y = self._forward(net, x[..., w_top:w_bottom, w_left:w_right])
            if out is None:
                out = y.new_zeros(x.shape[0], y.shape[1], h * scale, w * scale)
            dy, dx = (top - w_top) * scale, (left - w_left) * scale
            out[..., top * scale:bottom * scale, left * scale:right * scale] = \
                y[..., dy:dy + (bottom - top) * scale, dx:dx + (right - left) * scale]
        return out

    def test(self):
        """Sets ``self.output`` (N, C, H * scale, W * scale) from ``self.lq`` (N, C, H, W)."""
        net = self.net_g_ema if hasattr(self, 'net_g_ema') else self.net_g
        was_training = net.training
        net.eval()
        with torch.no_grad():
            if self.tile_size is None:
                self.output = self._forward(net, self.lq)
            else:
                self.output = self.tiled_forward(net, self.lq)
        net.train(was_training)
