"""What every reconstruction network is: its interface, its own loss, and its self-describing checkpoints.

The five networks of the paper (§3.2: Vanilla VAE, VQ-VAE, VQ-VAE-2, MAE, DDIM) subclass
:class:`ReconstructionNet`. ``ReconstructionModel`` trains any of them through this interface alone, and
:class:`~undersr.degrade.Degrader` degrades with :meth:`ReconstructionNet.reconstruct`, so a sixth network is one new
``*_arch.py`` file. This module has no ``_arch`` suffix: the registry scan does not import it as an architecture.
"""
from collections import OrderedDict

from undersr.weights import apply_weights, atomic_save, read_checkpoint, select_state_dict

from basicsr.utils.registry import ARCH_REGISTRY
from torch import nn


class ReconstructionNet(nn.Module):
    """Base class of the reconstruction networks: images in, images out, RGB in [0, 1].

    Subclasses implement:

    * ``forward(x, generator=None) -> dict``: the training pass on (N, 3, H, W) inputs whose sides are multiples
      of :attr:`stride`; the dict holds whatever :meth:`loss` needs;
    * ``loss(x, out) -> OrderedDict[str, Tensor]``: the network's own training objective as named, weighted scalar
      terms (``ReconstructionModel`` logs each and back-propagates their sum);
    * ``reconstruct(x, generator=None) -> Tensor``: the inference map for (N, 3, H, W) inputs of any size, the
      degradation of the method when the network is undertrained.

    Attributes:
        stride (int): H and W of :meth:`forward` inputs must be multiples of it.
        deterministic (bool): :meth:`reconstruct` draws no random numbers, so ``generator`` is ignored.
    """

    stride = 1
    deterministic = True

    def loss(self, x, out):
        """The training objective.

        Args:
            x (Tensor): (N, 3, H, W) input batch in [0, 1].
            out (dict): What :meth:`forward` returned for ``x``.

        Returns:
            OrderedDict[str, Tensor]: Weighted scalar terms, e.g. ``{'l_recon': ..., 'l_commit': ...}``.
        """
        raise NotImplementedError

    def reconstruct(self, x, generator=None):
        """Reconstructs images of any size; see the class docstring."""
        raise NotImplementedError


def weighted_terms(**terms):
    """The loss terms as an ordered dict, keeping the order they were given in (for logs)."""
    return OrderedDict(terms)


def save_reconstruction(path, net, network_opt, epoch, iteration):
    """Writes a self-describing reconstruction checkpoint.

    Besides BasicSR's ``params`` it records ``network_g`` (the options that build the network), ``epoch`` and
    ``iter``, so that :func:`load_reconstruction` needs nothing but the file.

    Args:
        path (str): Destination, e.g. ``.../net_g_ep8.pth``.
        net (nn.Module): Bare network.
        network_opt (dict): ``network_g`` options, including ``type``.
        epoch (int): Completed epochs.
        iteration (int): Completed iterations.
    """
    from undersr import __version__
    atomic_save({'params': net.state_dict(), 'network_g': dict(network_opt), 'epoch': int(epoch),
                 'iter': int(iteration), 'undersr_version': __version__}, path)


def load_reconstruction(path, device='cpu'):
    """Rebuilds a reconstruction network from a file written by :func:`save_reconstruction`.

    Args:
        path (str): Checkpoint path.
        device (str | torch.device): Where to put the network.

    Returns:
        tuple[ReconstructionNet, dict]: The network in eval mode, and the checkpoint's metadata
        (``network_g``, ``epoch``, ``iter``).

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a reconstruction checkpoint (e.g. an SR network or a training state).
    """
    checkpoint = read_checkpoint(path)
    network_opt = checkpoint.get('network_g') if isinstance(checkpoint, dict) else None
    if not isinstance(network_opt, dict) or 'type' not in network_opt:
        raise ValueError(f'{path} is not a reconstruction checkpoint: it has no `network_g` options. Use a '
                         '`net_g_ep<N>.pth` written by ReconstructionModel (python train.py -opt '
                         'options/train/recon/...).')
    network_opt = dict(network_opt)
    arch = ARCH_REGISTRY.get(network_opt.pop('type'))
    if not issubclass(arch, ReconstructionNet):
        raise ValueError(f'{path} holds a {arch.__name__}, not a reconstruction network (a subclass of '
                         'undersr.archs.recon_base.ReconstructionNet).')
    net = apply_weights(arch(**network_opt), select_state_dict(checkpoint, 'params', path), path)
    meta = {k: checkpoint.get(k) for k in ('network_g', 'epoch', 'iter')}
    return net.to(device).eval(), meta
