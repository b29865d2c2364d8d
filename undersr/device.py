"""Choosing the device that ``--device auto|cpu|cuda`` and ``num_gpu`` options mean, in one place."""
import torch


def resolve_device(device='auto'):
    """The :class:`torch.device` that ``device`` names.

    Args:
        device (str | torch.device | None): ``'auto'`` or ``None`` (CUDA when a GPU is visible, else the CPU),
            or anything :class:`torch.device` accepts (``'cpu'``, ``'cuda'``, ``'cuda:1'``).

    Returns:
        torch.device: The device.

    Raises:
        RuntimeError: a CUDA device was asked for on a machine without CUDA; the message says to use
            ``--device cpu`` or ``auto``.
    """
    if device in (None, 'auto'):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    device = torch.device(device)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f'device {device} asked for, but CUDA is not available here; use --device cpu or auto')
    return device
