"""LPIPS as a BasicSR metric (``type: calculate_lpips``), built offline from local weights.

The ``lpips`` package ships the small linear calibration layers of LPIPS v0.1 but not its backbone: left alone it
asks torchvision to download AlexNet or VGG16 ImageNet weights. Here the backbone is built with random weights
(``pnet_rand=True``, nothing is downloaded) and then filled from a torchvision weights file you already have:

* ``net: alex``: ``experiments/pretrained_models/alexnet-owt-7be5be79.pth``
  (download.pytorch.org/models/alexnet-owt-7be5be79.pth)
* ``net: vgg``: ``experiments/pretrained_models/vgg16-397923af.pth``
  (download.pytorch.org/models/vgg16-397923af.pth)

Use it in ``val.metrics`` of a BasicSR option file:

.. code-block:: yaml

    lpips:
      type: calculate_lpips
      crop_border: 4
      net: alex
      weights: experiments/pretrained_models/alexnet-owt-7be5be79.pth
      better: lower

When ``weights`` is missing (``~``) or names no file, the metric is skipped: the first call logs one line saying
so, and every call returns ``nan``. BasicSR copes with that: it averages to ``nan``, logs ``# lpips: nan`` and
never picks a ``nan`` as the best value. This keeps one option file usable on machines with and without the
weights, instead of failing a long test run at its end.
"""
import os
import threading
import warnings

from undersr.device import resolve_device

import numpy as np
import torch
from basicsr.metrics.metric_util import reorder_image
from basicsr.utils import get_root_logger
from basicsr.utils.registry import METRIC_REGISTRY

__all__ = ['calculate_lpips', 'build_lpips', 'BACKBONE_FILES']

# The torchvision files whose `features.*` weights form the LPIPS backbones.
BACKBONE_FILES = {'alex': 'alexnet-owt-7be5be79.pth', 'vgg': 'vgg16-397923af.pth'}
_NET_ALIASES = {'alex': 'alex', 'alexnet': 'alex', 'vgg': 'vgg', 'vgg16': 'vgg'}

_CACHE = {}  # (net, absolute weights path, device) -> LPIPS module
_LOCK = threading.Lock()
_NOTIFIED = set()  # skip notices already logged, so each is logged once per process


def _canonical_net(net):
    if net not in _NET_ALIASES:
        raise ValueError(f'calculate_lpips: net must be one of {sorted(_NET_ALIASES)}, got {net!r}')
    return _NET_ALIASES[net]


def build_lpips(net='alex', weights=None, device='cpu'):
    """Builds an LPIPS v0.1 model without any download and loads the backbone from ``weights``.

    Args:
        net (str): ``'alex'`` or ``'vgg'`` (``'alexnet'``, ``'vgg16'`` are accepted too).
        weights (str): A torchvision state dict for that backbone (see :data:`BACKBONE_FILES`); its
            ``features.<i>.*`` tensors are copied into the LPIPS slices.
        device (str | torch.device): Where the model lives.

    Returns:
        lpips.LPIPS: In eval mode, gradients off.

    Raises:
        FileNotFoundError: ``weights`` does not exist.
        RuntimeError: the file does not hold the backbone's ``features`` weights with the right shapes.
    """
    from undersr.weights import read_checkpoint, select_state_dict

    import lpips

    net = _canonical_net(net)
    if not weights or not os.path.isfile(weights):
        raise FileNotFoundError(f'LPIPS backbone weights not found: {weights}. Put torchvision\'s '
                                f'{BACKBONE_FILES[net]} there; undersr never downloads weights.')
    with warnings.catch_warnings():  # lpips passes torchvision's deprecated `pretrained=False`
        warnings.simplefilter('ignore', UserWarning)
        # pretrained=True: the linear layers shipped inside the lpips package; pnet_rand=True: random backbone,
        # so torchvision downloads nothing.
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    state = select_state_dict(read_checkpoint(weights), None, weights)
    # The LPIPS slices hold torchvision's `features` modules under their original indices ("slice2.3" is
    # features[3]), so the file's key `features.3.weight` goes to `net.slice2.3.weight`.
    mapping = {}
    for slice_name, block in model.net.named_children():
        for index, module in block.named_children():
            for param, _ in module.named_parameters(recurse=False):  # convolutions only; ReLU/pooling have none
                mapping[f'net.{slice_name}.{index}.{param}'] = f'features.{index}.{param}'
    own = model.state_dict()
    missing = [src for src in mapping.values() if src not in state]
    shapes = [dst for dst, src in mapping.items() if src in state and state[src].shape != own[dst].shape]
    if missing or shapes:
        raise RuntimeError(f'{weights} is not a torchvision {net} state dict: {len(missing)} missing keys '
                           f'{missing[:4]}, {len(shapes)} shape mismatches {shapes[:4]}')
    model.load_state_dict({dst: state[src] for dst, src in mapping.items()}, strict=False)
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval().to(device)


def _cached_model(net, weights, device):
    key = (net, os.path.abspath(weights), str(device))
    with _LOCK:
        if key not in _CACHE:
            _CACHE[key] = build_lpips(net, weights, device)
        return _CACHE[key]


def _to_tensor(img, device):
    """(H, W, 3) BGR image, uint8 or float in [0, 255] → (1, 3, H, W) RGB float tensor in [-1, 1]."""
    rgb = np.ascontiguousarray(img[..., ::-1], dtype=np.float32) / 255.
    return torch.from_numpy(rgb).permute(2, 0, 1)[None].to(device) * 2 - 1


@METRIC_REGISTRY.register()
def calculate_lpips(img, img2, crop_border, weights=None, net='alex', input_order='HWC', device=None, **kwargs):
    """LPIPS v0.1 distance (lower is more similar) between two images, BasicSR's metric convention.

    Args:
        img (ndarray): (H, W, 3) BGR, range [0, 255] (uint8 or float), as BasicSR's ``tensor2img`` gives.
        img2 (ndarray): The reference, same shape.
        crop_border (int): Pixels cut from each edge before comparing.
        weights (str | None): Local torchvision backbone file (see the module docstring). Missing → ``nan``.
        net (str): ``'alex'`` (default, as in most SR papers) or ``'vgg'``.
        input_order (str): ``'HWC'`` or ``'CHW'``.
        device (str | None): Default: CUDA when available, else CPU.
        **kwargs: Ignored (e.g. BasicSR's ``better: lower``).

    Returns:
        float: The LPIPS distance, or ``nan`` when ``weights`` is not available.
    """
    assert img.shape == img2.shape, f'Image shapes are different: {img.shape}, {img2.shape}.'
    net = _canonical_net(net)
    if not weights or not os.path.isfile(weights):
        if (net, weights) not in _NOTIFIED:
            _NOTIFIED.add((net, weights))
            get_root_logger().warning(
                f'LPIPS skipped (reported as nan): backbone weights {weights} not found. Put torchvision\'s '
                f'{BACKBONE_FILES[net]} there to compute it.')
        return float('nan')
    img = reorder_image(img, input_order=input_order)
    img2 = reorder_image(img2, input_order=input_order)
    if crop_border:
        img = img[crop_border:-crop_border, crop_border:-crop_border]
        img2 = img2[crop_border:-crop_border, crop_border:-crop_border]
    device = resolve_device(device)
    model = _cached_model(net, weights, device)
    with torch.no_grad():
        return float(model(_to_tensor(img, device), _to_tensor(img2, device)).item())
