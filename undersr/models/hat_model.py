"""HAT's model classes, so that the option files of XPixelGroup/HAT run through undersr's ``train.py``/``test.py``.

HAT (Chen et al., CVPR 2023) is the paper's main backbone (arXiv 2503.02767, Table 1). The HAT project ships its
own BasicSR model classes, which its option files name: ``HATModel`` for bicubic SR and ``RealHATMSEModel`` /
``RealHATGANModel`` for Real-ESRGAN-style training. Their behaviour beyond BasicSR's models is test-time only: the
LR input is reflect-padded to a multiple of ``network_g.window_size`` and the output cropped back, and the
optional ``tile: {tile_size, tile_pad}`` runs large images tile by tile. That is :class:`TiledTestMixin`
(:mod:`undersr.models.tiling`), put in front of the matching BasicSR model. The Real-ESRGAN ones are BasicSR's
device-agnostic versions (:mod:`undersr.basicsr_fixes`), so they also run with ``num_gpu: 0``. All four read
``train.amp``, ``train.channels_last`` and ``train.compile`` (:mod:`undersr.models.train_speed`).
"""
from undersr.models.tiling import TiledTestMixin
from undersr.models.train_speed import TrainSpeedMixin
from undersr.models.undertrained_mixin import UndertrainedMixin

from basicsr.models import realesrgan_model, realesrnet_model
from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class HATModel(TrainSpeedMixin, TiledTestMixin, SRModel):
    """HAT's ``HATModel``: ``SRModel`` training, window-size padding and optional tiling at test time."""


@MODEL_REGISTRY.register()
class RealHATMSEModel(TrainSpeedMixin, TiledTestMixin, realesrnet_model.RealESRNetModel):
    """HAT's ``RealHATMSEModel``: ``RealESRNetModel`` (on-the-fly Real-ESRGAN degradations, pixel loss) with HAT's
    test-time padding and tiling."""


@MODEL_REGISTRY.register()
class RealHATGANModel(TrainSpeedMixin, TiledTestMixin, realesrgan_model.RealESRGANModel):
    """HAT's ``RealHATGANModel``: ``RealESRGANModel`` (Real-ESRGAN degradations, GAN and perceptual losses) with
    HAT's test-time padding and tiling."""


@MODEL_REGISTRY.register()
class UndertrainedHATModel(UndertrainedMixin, HATModel):
    """``HATModel`` whose training ``lq`` is made from ``gt`` with undertrained reconstruction networks on the fly.

    Options ``degradation`` and ``save_lq_every``: :class:`undersr.models.undertrained_mixin.UndertrainedMixin`.
    """
