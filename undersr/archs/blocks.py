"""Building blocks shared by the VQ-VAE models (no ``_arch`` suffix: the registry scan skips this module).

The encoder and decoder follow the VQ-VAE-2 reference design (Razavi et al. 2019, §3.1 and appendix A):
strided 4x4 convolutions down, a 3x3 convolution, ReLU residual blocks (3x3 then 1x1), and 4x4 transposed
convolutions back up.
"""
from collections import OrderedDict

from undersr.archs.arch_util import crop_to, pad_to_multiple
from undersr.archs.quantize import EMAQuantizer
from undersr.archs.recon_base import ReconstructionNet

import torch
from torch import nn
from torch.nn import functional as F


class ResBlock(nn.Module):
    """Pre-activation residual block: ``x + conv1x1(relu(conv3x3(relu(x))))``.

    Args:
        channels (int): Input and output channels.
        res_channels (int): Channels inside the block.
    """

    def __init__(self, channels, res_channels):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, res_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(res_channels, channels, 1),
        )

    def forward(self, x):
        """(N, C, H, W) -> (N, C, H, W)."""
        return x + self.body(x)


class Encoder(nn.Module):
    """Downsamples by ``2 ** num_down`` with strided 4x4 convolutions, then applies residual blocks.

    Args:
        in_channels (int): Input channels.
        hidden_channels (int): Output channels (the first of several strided convolutions uses half).
        res_channels (int): Channels inside the residual blocks.
        num_res_blocks (int): Number of residual blocks.
        num_down (int): Number of stride-2 convolutions (1 or more).
    """

    def __init__(self, in_channels, hidden_channels, res_channels, num_res_blocks, num_down):
        super().__init__()
        layers = []
        channels = in_channels
        for i in range(num_down):
            out = hidden_channels if i == num_down - 1 and num_down > 1 else hidden_channels // 2
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.ReLU(inplace=True)]
            channels = out
        layers.append(nn.Conv2d(channels, hidden_channels, 3, padding=1))
        layers += [ResBlock(hidden_channels, res_channels) for _ in range(num_res_blocks)]
        layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        """(N, in_channels, H, W) -> (N, hidden_channels, H / 2**num_down, W / 2**num_down)."""
        return self.body(x)


class Decoder(nn.Module):
    """Residual blocks, then upsampling by ``2 ** num_up`` with 4x4 transposed convolutions.

    Args:
        in_channels (int): Input channels.
        out_channels (int): Output channels (no activation on the output).
        hidden_channels (int): Working channels (halved before the last transposed convolution when
            ``num_up > 1``).
        res_channels (int): Channels inside the residual blocks.
        num_res_blocks (int): Number of residual blocks.
        num_up (int): Number of stride-2 transposed convolutions (1 or more).
    """

    def __init__(self, in_channels, out_channels, hidden_channels, res_channels, num_res_blocks, num_up):
        super().__init__()
        layers = [nn.Conv2d(in_channels, hidden_channels, 3, padding=1)]
        layers += [ResBlock(hidden_channels, res_channels) for _ in range(num_res_blocks)]
        layers.append(nn.ReLU(inplace=True))
        channels = hidden_channels
        for i in range(num_up):
            last = i == num_up - 1
            out = out_channels if last else hidden_channels // 2
            layers.append(nn.ConvTranspose2d(channels, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ReLU(inplace=True))
            channels = out
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        """(N, in_channels, h, w) -> (N, out_channels, h * 2**num_up, w * 2**num_up)."""
        return self.body(x)


class VQAutoencoderBase(ReconstructionNet):
    """Common constructor, loss and interface of the VQ models: training ``forward`` and padded ``reconstruct``.

    Input and output are RGB in [0, 1]; internally the image is mapped to [-1, 1]. Subclasses set ``stride`` and
    implement ``_build(in_channels, hidden_channels, res_channels, num_res_blocks, embedding_dim)`` (creating their
    quantisers with :meth:`_quantizer`) and ``_run(x, update) -> (out, commit)`` on inputs in [0, 1] whose size is a
    multiple of ``stride``, ``out`` being the decoder's raw output.

    Args:
        in_channels (int): Image channels.
        hidden_channels (int): Encoder/decoder channels.
        res_channels (int): Channels inside the residual blocks.
        num_res_blocks (int): Residual blocks in each encoder and decoder.
        num_embeddings (int): Size of each codebook.
        embedding_dim (int): Code vector length.
        decay (float): Codebook EMA decay.
        data_init (bool): Initialise the codebook(s) from the first training batch (see
            :class:`~undersr.archs.quantize.EMAQuantizer`).
        commitment_weight (float): Weight beta of the commitment term in :meth:`loss` (van den Oord et al.
            2017, Eq. 3; 0.25 there and in Razavi et al. 2019).
        sigmoid_output (bool): True (the default, and the behaviour of every checkpoint written before this option
            existed): the decoder's output goes through a sigmoid into [0, 1] and the reconstruction MSE is taken in
            [0, 1]. False: as rosinality's vq-vae-2-pytorch, the reference implementation the paper names: the
            decoder's output is the image in [-1, 1] with no activation, and the MSE is taken in [-1, 1] (4x the
            [0, 1] value, so the commitment term weighs 4x less against it). The paper-scale options
            (``options/train/recon/train_VQVAE*_tinyimagenet.yml``) set False; see docs/paper-choices.md.
    """

    def __init__(self, in_channels=3, hidden_channels=128, res_channels=32, num_res_blocks=2, num_embeddings=512,
                 embedding_dim=64, decay=0.99, data_init=True, commitment_weight=0.25, sigmoid_output=True):
        super().__init__()
        self.commitment_weight = float(commitment_weight)
        self.sigmoid_output = bool(sigmoid_output)
        self._codebook = dict(num_embeddings=num_embeddings, embedding_dim=embedding_dim, decay=decay,
                              data_init=data_init)
        self._build(in_channels, hidden_channels, res_channels, num_res_blocks, embedding_dim)

    def _quantizer(self):
        """A new EMA quantiser with this model's codebook options."""
        return EMAQuantizer(**self._codebook)

    def _build(self, in_channels, hidden_channels, res_channels, num_res_blocks, embedding_dim):
        raise NotImplementedError

    def _run(self, x, update):
        raise NotImplementedError

    def _check_size(self, x):
        h, w = x.shape[-2:]
        if h % self.stride or w % self.stride:
            raise ValueError(f'{type(self).__name__}: height and width must be multiples of {self.stride}, '
                             f'got {h}x{w}; use reconstruct() for other sizes')

    def _decode(self, x, update):
        """The reconstruction in [0, 1] (not clamped) and the commitment loss (see ``sigmoid_output``)."""
        out, commit = self._run(x, update)
        return (torch.sigmoid(out) if self.sigmoid_output else (out + 1) / 2), commit

    def forward(self, x, generator=None):
        """Training pass; updates the codebooks when the module is in training mode.

        Args:
            x (Tensor): (N, 3, H, W) RGB in [0, 1], H and W multiples of ``stride``.
            generator (torch.Generator | None): Unused (the model is deterministic); accepted for the
                interface shared with the stochastic model families.

        Returns:
            dict: ``'recon'`` (N, 3, H, W), nominally in [0, 1] (unclamped without ``sigmoid_output``);
            ``'commit'`` () float32 commitment loss (unweighted).
        """
        self._check_size(x)
        recon, commit = self._decode(x, update=self.training)
        return {'recon': recon, 'commit': commit}

    def loss(self, x, out):
        """Reconstruction MSE plus the weighted commitment term (van den Oord et al. 2017, Eq. 3).

        The codebook term of Eq. 3 is absent: the EMA quantiser updates the codebook without gradients. The MSE is
        taken in the decoder's range: [0, 1] with ``sigmoid_output``, [-1, 1] without (as rosinality's reference).

        Returns:
            OrderedDict[str, Tensor]: ``l_recon`` and ``l_commit``.
        """
        recon, target = (out['recon'], x) if self.sigmoid_output else (out['recon'] * 2 - 1, x * 2 - 1)
        return OrderedDict(l_recon=F.mse_loss(recon, target), l_commit=self.commitment_weight * out['commit'])

    @torch.no_grad()
    def reconstruct(self, x, generator=None):
        """Encodes, quantises and decodes an image of any size; never updates the codebooks.

        Args:
            x (Tensor): (N, 3, H, W) RGB in [0, 1], any H and W.
            generator (torch.Generator | None): Unused (the model is deterministic); accepted for the
                interface shared with the stochastic model families.

        Returns:
            Tensor: (N, 3, H, W) reconstruction clamped to [0, 1].
        """
        padded, size = pad_to_multiple(x, self.stride)
        recon, _ = self._decode(padded, update=False)
        return crop_to(recon, size).clamp(0, 1)
