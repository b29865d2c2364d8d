"""Loading network weights from checkpoint files, with errors that say what to do.

Official SR checkpoints come in three layouts: weights under ``params_ema``, under ``params``, or at the top
level of the file. :func:`load_weights` accepts all three and never downloads anything.
"""
import os
from collections import OrderedDict

from undersr.fileio import atomic_path

import torch

# Official files referenced by our options, and where their authors publish them. Text only: we never download.
OFFICIAL_WEIGHTS = {
    'HAT_SRx4_ImageNet-pretrain.pth': 'the HAT project (github.com/XPixelGroup/HAT, "Pretrained Models")',
    'HAT_SRx4.pth': 'the HAT project (github.com/XPixelGroup/HAT, "Pretrained Models")',
    'HAT-S_SRx4.pth': 'the HAT project (github.com/XPixelGroup/HAT, "Pretrained Models")',
    '001_classicalSR_DF2K_s64w8_SwinIR-M_x4.pth': 'the SwinIR releases (github.com/JingyunLiang/SwinIR/releases)',
    '001_classicalSR_DIV2K_s48w8_SwinIR-M_x4.pth': 'the SwinIR releases (github.com/JingyunLiang/SwinIR/releases)',
    'EDSR_Lx4_f256b32_DIV2K_official-76ee1c8f.pth': 'the BasicSR model zoo (github.com/XPixelGroup/BasicSR, '
    'docs/ModelZoo.md)',
    'ESRGAN_SRx4_DF2KOST_official-ff704c30.pth': 'the BasicSR model zoo (github.com/XPixelGroup/BasicSR, '
    'docs/ModelZoo.md)',
    'ESRGAN_PSNR_SRx4_DF2K_official-150ff491.pth': 'the BasicSR model zoo (github.com/XPixelGroup/BasicSR, '
    'docs/ModelZoo.md)',
    'vgg19-dcbb9e9d.pth': 'torchvision (download.pytorch.org/models/vgg19-dcbb9e9d.pth)',
}


def missing_file_message(path, what='weights'):
    """Returns an error message for a missing weights file, naming where the official file comes from."""
    name = os.path.basename(str(path))
    msg = f'{what} file not found: {path}.'
    if name in OFFICIAL_WEIGHTS:
        msg += f' Download {name} from {OFFICIAL_WEIGHTS[name]} and put it at that path.'
    else:
        msg += ' Check `path.pretrain_network_*` in your options.'
    return msg + ' undersr never downloads weights.'


def read_checkpoint(path):
    """Reads a checkpoint onto the CPU without executing pickled code.

    Raises:
        FileNotFoundError: ``path`` does not exist; the message says where official files come from.
        ValueError: the file is not a readable PyTorch checkpoint.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(missing_file_message(path))
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as err:  # torch raises many types for truncated or foreign files
        raise ValueError(f'{path} is not a readable PyTorch checkpoint ({type(err).__name__}: {err}). '
                         'Re-download or re-save it.') from err


def select_state_dict(checkpoint, param_key='params', path='<checkpoint>'):
    """Picks the state dict out of a checkpoint in any of the three official layouts.

    Args:
        checkpoint (dict): What :func:`read_checkpoint` returned.
        param_key (str | None): Preferred key. ``params_ema`` falls back to ``params`` and vice versa; ``None``
            or a file without either key means the weights are at the top level.
        path (str): Used in error messages.

    Returns:
        OrderedDict[str, Tensor]: Weights with any DataParallel ``module.`` prefix removed.
    """
    if not isinstance(checkpoint, dict):
        raise ValueError(f'{path} holds a {type(checkpoint).__name__}, not a dict of weights.')
    for key in (param_key, 'params_ema', 'params'):
        if key is not None and key in checkpoint:
            checkpoint = checkpoint[key]
            break
    weights = OrderedDict((k[len('module.'):] if k.startswith('module.') else k, v) for k, v in checkpoint.items())
    if not weights or not all(torch.is_tensor(v) for v in weights.values()):
        raise ValueError(f'{path} has no tensors under `params_ema`, `params` or the top level; '
                         f'its keys are {list(checkpoint)[:8]}.')
    return weights


def load_weights(net, path, param_key='params', strict=True):
    """Loads weights from the file ``path`` into ``net``; see :func:`apply_weights` for the checks."""
    return apply_weights(net, select_state_dict(read_checkpoint(path), param_key, path), path, strict)


def apply_weights(net, weights, path, strict=True):
    """Copies ``weights`` into ``net`` after checking keys and shapes.

    Args:
        net (nn.Module): Bare network (not wrapped in DataParallel).
        weights (dict[str, Tensor]): State dict, e.g. from :func:`select_state_dict`.
        path (str): The file they came from, for messages.
        strict (bool): Require identical keys (shapes must always match).

    Returns:
        nn.Module: ``net``.

    Raises:
        RuntimeError: keys or shapes do not match; names the file, the network type and the first offenders.
    """
    own = net.state_dict()
    missing = [k for k in own if k not in weights]
    unexpected = [k for k in weights if k not in own]
    shapes = [f'{k}: file {tuple(weights[k].shape)} vs net {tuple(own[k].shape)}' for k in own
              if k in weights and weights[k].shape != own[k].shape]
    if shapes or (strict and (missing or unexpected)):
        raise RuntimeError(
            f'{path} does not fit network {type(net).__name__}: {len(missing)} missing keys {missing[:5]}, '
            f'{len(unexpected)} unexpected keys {unexpected[:5]}, {len(shapes)} shape mismatches {shapes[:3]}. '
            'Check that the network options (e.g. embed_dim, depths, num_block, upscale) match the checkpoint.')
    net.load_state_dict(weights, strict=strict)
    return net


def atomic_save(obj, path):
    """``torch.save`` to a temporary file, then rename: a crash never leaves a half-written checkpoint."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
