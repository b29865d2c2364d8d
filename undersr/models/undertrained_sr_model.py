"""On-the-fly undertrained degradation on the training device, batched, in ``feed_data``: ``SRModel`` flavour."""
from undersr.models.amp_model import AmpSRModel
from undersr.models.undertrained_mixin import UndertrainedMixin

from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class UndertrainedSRModel(UndertrainedMixin, AmpSRModel):
    """BasicSR's ``SRModel`` (pixel losses) that makes its training ``lq`` from ``gt`` with undertrained networks.

    The training dataset only needs to give HR crops (``gt``), e.g. ``ReconImageDataset``; each sample of a batch
    draws its own degradation source, and validation uses the dataset's own ``lq``. The ``degradation`` and
    ``save_lq_every`` options and the behaviour are documented in
    :class:`undersr.models.undertrained_mixin.UndertrainedMixin`, shared with ``UndertrainedESRGANModel`` and
    ``UndertrainedSwinIRModel``. ``train.amp``, ``train.channels_last`` and ``train.compile`` as in ``AmpSRModel``
    (:mod:`undersr.models.train_speed`).
    """
