"""SR networks ready to run on whole photos: loading them from a checkpoint, and the one inference engine.

A checkpoint is one of
- ours (BasicSR's ``net_g_*.pth`` or an exported file, weights under ``params_ema``/``params``), whose network
  comes from a BasicSR option file: ``--opt FILE``, else ``<checkpoint stem>.yml`` beside it, else the option file
  that BasicSR copies into the experiment folder (``experiments/<name>/<option>.yml`` for
  ``experiments/<name>/models/net_g_*.pth``);
- any release that spandrel recognises from its weights alone (HAT, SwinIR, RRDBNet/ESRGAN, SRVGGNetCompact, ...).

Inference runs :func:`undersr.models.tiling.tiled_forward`, the engine that ``TiledSRModel`` and ``HATModel`` test
with, after Real-ESRGAN's ``pre_pad`` (reflect padding at the bottom and right, cut off again). Why this engine and
not ``realesrgan``'s ``RealESRGANer``: ``docs/upscale.md`` (measured).
"""
import glob
from os import path as osp

from undersr.device import resolve_device
from undersr.models.tiling import parse_tile_options, tiled_forward
from undersr.weights import apply_weights, read_checkpoint, select_state_dict

import cv2
import numpy as np
import torch
import torch.nn.functional as F
import yaml

PRECISIONS = {'fp32': torch.float32, 'fp16': torch.float16, 'bf16': torch.bfloat16}


class Upscaler:
    """An SR network with what running it on a photo needs: its scale, padding multiple, precision and tiles.

    Args:
        net (nn.Module): (N, 3, h, w) RGB in [0, 1] -> (N, 3, h * scale, w * scale).
        scale (int): Upscaling factor of ``net``.
        source (str): Where the network came from, for messages (e.g. ``'EDSR from opt.yml'``).
        device (torch.device): Where ``net`` is.
        dtype (torch.dtype): Precision of ``net`` (float32, float16 or bfloat16).
        pad_multiple (int): H and W multiple that ``net`` needs (its window size).
        tile_size (int | None): Tile side in input pixels; ``None`` runs whole images.
        tile_pad (int): Context around each tile in input pixels.
        pre_pad (int): Reflect padding added at the bottom and right of the whole image and cut off again.
    """

    def __init__(self, net, scale, source, device, dtype=torch.float32, pad_multiple=1, tile_size=None, tile_pad=10,
                 pre_pad=10):
        self.net, self.scale, self.source, self.device, self.dtype = net, scale, source, device, dtype
        self.pad_multiple, self.tile_size, self.tile_pad, self.pre_pad = pad_multiple, tile_size, tile_pad, pre_pad

    def __call__(self, rgb, size=None):
        """Super-resolves one image.

        Args:
            rgb (ndarray): (H, W, 3) float32 RGB in [0, 1].
            size (tuple[int, int] | None): Output (width, height); other than the network's (W * scale,
                H * scale), its output is resized with Lanczos (Real-ESRGAN's ``--outscale``).

        Returns:
            ndarray: (height, width, 3) float32 RGB in [0, 1].
        """
        x = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].to(self.device, self.dtype)
        h, w = rgb.shape[:2]
        pad = min(self.pre_pad, h - 1, w - 1)
        if pad > 0:
            x = F.pad(x, (0, pad, 0, pad), mode='reflect')
        with torch.inference_mode():
            y = tiled_forward(self.net, x, self.scale, self.tile_size, self.tile_pad, self.pad_multiple)
            y = y[0, :, :h * self.scale, :w * self.scale].float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
        if size is not None and size != (y.shape[1], y.shape[0]):
            y = np.clip(cv2.resize(y, size, interpolation=cv2.INTER_LANCZOS4), 0, 1)
        return y


class Bicubic:
    """Bicubic upsampling (OpenCV's) with the interface of :class:`Upscaler`: the baseline of a comparison."""

    source = 'bicubic upsampling (cv2.INTER_CUBIC)'

    def __init__(self, scale):
        self.scale = scale

    def __call__(self, rgb, size=None):
        """(H, W, 3) float32 in [0, 1] -> (height, width, 3) float32 in [0, 1]; ``size`` = (width, height)."""
        size = size or (round(rgb.shape[1] * self.scale), round(rgb.shape[0] * self.scale))
        return np.clip(cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC), 0, 1)


def find_option_file(checkpoint):
    """The BasicSR option file that describes ``checkpoint``'s network, or ``None``.

    Looks for ``<stem>.yml``/``<stem>.yaml`` beside the checkpoint, then, for ``<experiment>/models/*.pth``, the
    newest ``<experiment>/*.yml`` (BasicSR copies the option file of each run there).
    """
    stem = osp.splitext(checkpoint)[0]
    for ext in ('.yml', '.yaml'):
        if osp.isfile(stem + ext):
            return stem + ext
    folder = osp.dirname(osp.abspath(checkpoint))
    if osp.basename(folder) == 'models':
        found = sorted(glob.glob(osp.join(osp.dirname(folder), '*.yml')), key=osp.getmtime)
        if found:
            return found[-1]
    return None


def read_network_options(path):
    """The option dict of a BasicSR option file; raises ``ValueError`` naming it if it has no ``network_g.type``."""
    try:
        with open(path) as f:
            opt = yaml.safe_load(f)
    except OSError as err:
        raise FileNotFoundError(f'option file {path}: {err.strerror or err}') from err
    except yaml.YAMLError as err:
        raise ValueError(f'option file {path} is not valid YAML: {err}') from err
    if not isinstance(opt, dict) or not isinstance(opt.get('network_g'), dict) or 'type' not in opt['network_g']:
        raise ValueError(f'option file {path} has no `network_g:` with a `type`; give the train or test option file '
                         'of this model with --opt')
    return opt


def measured_scale(net, pad_multiple, device, dtype, what):
    """The upscaling factor of ``net``, from one forward pass on a small zero image."""
    side = pad_multiple * -(-16 // pad_multiple)
    with torch.inference_mode():
        y = net(torch.zeros(1, 3, side, side, device=device, dtype=dtype))
    if y.ndim != 4 or y.shape[1] != 3 or y.shape[-1] % side or y.shape[-1] != y.shape[-2]:
        raise ValueError(f'{what} maps a (1, 3, {side}, {side}) image to {tuple(y.shape)}, not an RGB image '
                         'enlarged by a whole factor; only RGB SR networks can upscale photos')
    return y.shape[-1] // side


def build_from_options(weights, opt, checkpoint, opt_path):
    """``(network, pad multiple, description)`` of one of our checkpoints from its option dict."""
    from basicsr.utils.registry import ARCH_REGISTRY  # filled by `import undersr`
    options = dict(opt['network_g'])
    kind = options.pop('type')
    try:
        net = ARCH_REGISTRY.get(kind)(**options)
    except (KeyError, TypeError) as err:
        raise ValueError(f'option file {opt_path}: cannot build network_g ({err})') from err
    try:
        apply_weights(net, weights, checkpoint)
    except RuntimeError as err:  # keys or shapes differ: the message names the file and the first offenders
        raise ValueError(f'{err} (network from {opt_path})') from err
    return net, int(options.get('window_size') or 1), f'{kind} from {opt_path}'


def build_with_spandrel(weights, checkpoint, precision):
    """``(network, scale, pad multiple, description)`` of an official release that spandrel recognises."""
    from spandrel import ImageModelDescriptor, ModelLoader, UnsupportedModelError
    try:
        model = ModelLoader().load_from_state_dict(weights)
    except UnsupportedModelError:
        raise ValueError(
            f'{checkpoint}: no option file describes its network (looked for {osp.splitext(checkpoint)[0]}.yml, and '
            'for experiments/<name>/*.yml beside a models/ folder) and spandrel does not recognise its weights. '
            'Give the option file it was trained or tested with: --opt OPTION.yml (its network_g is used).') from None
    except (RuntimeError, KeyError, ValueError) as err:
        raise ValueError(f'{checkpoint}: spandrel took it for a known architecture but could not load it ({err}). '
                         'Give its network with --opt OPTION.yml.') from err
    name = model.architecture.name
    if not isinstance(model, ImageModelDescriptor) or model.input_channels != 3 or model.output_channels != 3:
        raise ValueError(f'{checkpoint}: spandrel loads it as {name}, which is not an RGB image-to-image network')
    if model.size_requirements.square:
        raise ValueError(f'{checkpoint}: {name} needs square inputs, which undersr upscale does not support')
    if (precision == 'fp16' and not model.supports_half) or (precision == 'bf16' and not model.supports_bfloat16):
        raise ValueError(f'{checkpoint}: spandrel says {name} does not support {precision}; leave out --half/--bf16')
    return model.model, model.scale, model.size_requirements.multiple_of, f'{name} (spandrel)'


def load_upscaler(checkpoint, opt=None, device='auto', precision='fp32', tile_size=None, tile_pad=10, pre_pad=10):
    """Loads an SR checkpoint as an :class:`Upscaler` (see the module docstring for what it accepts).

    Args:
        checkpoint (str): ``.pth`` file.
        opt (str | None): BasicSR option file whose ``network_g`` describes the network; ``None`` or ``'auto'``:
            found beside the checkpoint (:func:`find_option_file`), else spandrel's detection.
        device (str | torch.device): ``'auto'``, ``'cpu'``, ``'cuda'``, ... (:func:`undersr.device.resolve_device`).
        precision (str): ``'fp32'``, ``'fp16'`` or ``'bf16'``.
        tile_size (int | None): Tile side in input pixels; ``None`` or 0 run whole images.
        tile_pad (int): Context around each tile in input pixels.
        pre_pad (int): Reflect padding at the bottom and right of each image.

    Returns:
        Upscaler: The network in eval mode on ``device``.

    Raises:
        FileNotFoundError: the checkpoint or option file is missing.
        ValueError: the checkpoint cannot be read, does not fit the network of its option file, or neither an
            option file nor spandrel describes it; the message names the file and the fix.
    """
    device, dtype = resolve_device(device), PRECISIONS[precision]
    state = read_checkpoint(checkpoint)
    opt_path = find_option_file(checkpoint) if opt in (None, 'auto') else opt
    if opt_path:
        options = read_network_options(opt_path)
        param_key = (options.get('path') or {}).get('param_key_g', 'params_ema')
        net, pad_multiple, source = build_from_options(select_state_dict(state, param_key, checkpoint), options,
                                                       checkpoint, opt_path)
        scale = None
    else:
        net, scale, pad_multiple, source = build_with_spandrel(select_state_dict(state, 'params_ema', checkpoint),
                                                               checkpoint, precision)
    tile = {'tile_size': tile_size or None, 'tile_pad': tile_pad, 'pad_multiple': pad_multiple}
    tile_size, tile_pad, pad_multiple = parse_tile_options({'tile': tile, 'network_g': {}}, checkpoint)
    if pre_pad < 0:
        raise ValueError(f'{checkpoint}: pre_pad must be >= 0, got {pre_pad}')
    net = net.eval().to(device=device, dtype=dtype)
    scale = scale or measured_scale(net, pad_multiple, device, dtype, f'{source} ({checkpoint})')
    return Upscaler(net, scale, source, device, dtype, pad_multiple, tile_size, tile_pad, pre_pad)
