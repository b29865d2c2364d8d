"""On-the-fly undertrained degradation for GAN fine-tuning: ``ESRGANModel`` flavour."""
from undersr.models.amp_model import AmpESRGANModel
from undersr.models.undertrained_mixin import UndertrainedMixin

from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class UndertrainedESRGANModel(UndertrainedMixin, AmpESRGANModel):
    """BasicSR's ``ESRGANModel`` (pixel, perceptual and relativistic GAN losses, ``network_d``) whose training
    ``lq`` is made from ``gt`` with undertrained reconstruction networks.

    Same options as ``ESRGANModel`` plus ``degradation`` and ``save_lq_every``; see
    :class:`undersr.models.undertrained_mixin.UndertrainedMixin`. The discriminator sees the ``gt`` crops, so
    ``network_d.input_size`` must equal ``datasets.train.gt_size`` (128 or 256 for ``VGGStyleDiscriminator``).
    ``train.amp``, ``train.channels_last`` and ``train.compile``: :mod:`undersr.models.train_speed`.
    """
