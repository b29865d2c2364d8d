"""On-the-fly undertrained degradation for SwinIR: ``SwinIRModel`` flavour."""
from undersr.models.amp_model import AmpSwinIRModel
from undersr.models.undertrained_mixin import UndertrainedMixin

from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class UndertrainedSwinIRModel(UndertrainedMixin, AmpSwinIRModel):
    """BasicSR's ``SwinIRModel`` whose training ``lq`` is made from ``gt`` with undertrained reconstruction networks.

    BasicSR's ``SwinIR`` network needs inputs whose sides are multiples of ``window_size``; ``SwinIRModel.test``
    pads validation images (e.g. Set5's 57×86 ``woman``) and crops the output, which ``UndertrainedSRModel`` would
    not. Options: ``degradation`` and ``save_lq_every``, see
    :class:`undersr.models.undertrained_mixin.UndertrainedMixin`; ``train.amp``, ``train.channels_last`` and
    ``train.compile``: :mod:`undersr.models.train_speed`.
    """
