"""BasicSR's ``SRModel``, ``SwinIRModel`` and ``ESRGANModel`` with ``train.amp``, ``train.channels_last`` and
``train.compile`` (:class:`undersr.models.train_speed.TrainSpeedMixin`).

The fine-tuning option files name these instead of the stock classes; with the options off (the default) each
trains exactly as the BasicSR class it extends::

    model_type: AmpSRModel   # was SRModel
    train:
      amp: bf16              # bf16 | fp16 | none
      channels_last: true
      compile: false
"""
from undersr.models.train_speed import TrainSpeedMixin

from basicsr.models.esrgan_model import ESRGANModel
from basicsr.models.sr_model import SRModel
from basicsr.models.swinir_model import SwinIRModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class AmpSRModel(TrainSpeedMixin, SRModel):
    """``SRModel`` (pixel and perceptual losses) with the training speed options."""


@MODEL_REGISTRY.register()
class AmpSwinIRModel(TrainSpeedMixin, SwinIRModel):
    """``SwinIRModel`` (validation images padded to ``window_size``) with the training speed options."""


@MODEL_REGISTRY.register()
class AmpESRGANModel(TrainSpeedMixin, ESRGANModel):
    """``ESRGANModel`` (pixel, perceptual and relativistic GAN losses, ``network_d``) with the training speed
    options; with ``amp: fp16`` both optimizers step through one GradScaler."""
