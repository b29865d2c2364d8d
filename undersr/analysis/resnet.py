"""The paper's diversity classifier: torchvision's ResNet-152 on corrupted patches (paper §4.3).

The paper classifies degraded LR images into ImageNet-C corruption types with a ResNet-152 trained on Tiny-ImageNet-C.
:class:`ResNetClassifier` is torchvision's architecture (any depth of the family, 152 by default) with a new
classification layer; ``undersr train-degradation-classifier --arch resnet152 --images <Tiny-ImageNet train>``
builds Tiny-ImageNet-C on the fly from the user's Tiny-ImageNet (:mod:`undersr.analysis.classifier`) and trains it.
It may start from a local ImageNet file of torchvision (``--init resnet152-394f9c45.pth``); nothing is ever
downloaded.
"""
import os

import torch
import torchvision
from torch import nn

DEPTHS = ('resnet18', 'resnet34', 'resnet50', 'resnet101', 'resnet152')
# torchvision's ImageNet normalisation, which its published weights expect.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ResNetClassifier(nn.Module):
    """torchvision's ResNet with ``num_classes`` outputs and ImageNet input normalisation inside.

    Args:
        num_classes (int): Output classes.
        depth (str): One of :data:`DEPTHS`; ``'resnet152'`` is the paper's.

    Input (N, 3, P, P) RGB in [0, 1], any P (five stride-2 stages: from P = 32 on, the last stage sees 1×1 features);
    output logits (N, num_classes).
    """

    def __init__(self, num_classes, depth='resnet152'):
        super().__init__()
        self.num_classes = num_classes
        if depth not in DEPTHS:
            raise ValueError(f'unknown ResNet depth {depth!r}; choose one of {", ".join(DEPTHS)}')
        self.net = getattr(torchvision.models, depth)(weights=None, num_classes=num_classes)
        self.register_buffer('mean', torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer('std', torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def load_imagenet_init(model, path):
    """Loads a local torchvision ImageNet checkpoint of the same depth into everything but the classification layer.

    Args:
        model (ResNetClassifier): The classifier to initialise.
        path (str): A ``torch.save``'d state dict of ``torchvision.models.<depth>`` (e.g. torchvision's
            ``resnet152-394f9c45.pth``).

    Raises:
        FileNotFoundError: ``path`` does not exist; the message names the file torchvision publishes.
        ValueError: the file is not a state dict of this depth (the message names the first wrong keys).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f'ImageNet weights not found: {path}. Put torchvision\'s ImageNet file for this ResNet there (for '
            'ResNet-152: resnet152-394f9c45.pth, published with torchvision.models.ResNet152_Weights), or leave '
            '--init out to train from scratch.')
    state = torch.load(path, map_location='cpu', weights_only=True)
    if not isinstance(state, dict) or not all(torch.is_tensor(v) for v in state.values()):
        raise ValueError(f'{path} is not a state dict of tensors (expected torchvision ImageNet weights)')
    state = {k: v for k, v in state.items() if not k.startswith('fc.')}
    own = {k: v for k, v in model.net.state_dict().items() if not k.startswith('fc.')}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    mis_shaped = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or mis_shaped:
        raise ValueError(f'{path} does not fit {type(model.net).__name__} of this depth: missing {missing[:3]}, '
                         f'unexpected {unexpected[:3]}, mis-shaped {mis_shaped[:3]}; use the ImageNet file of the '
                         'same depth as --arch')
    model.net.load_state_dict(state, strict=False)
