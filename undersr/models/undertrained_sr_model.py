"""On-the-fly undertrained degradation on the training device, batched, in ``feed_data``: ``SRModel`` flavour."""
from undersr.models.undertrained_mixin import UndertrainedMixin

from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class UndertrainedSRModel(UndertrainedMixin, SRModel):
    """BasicSR's ``SRModel`` (pixel losses) that makes its training ``lq`` from ``gt`` with undertrained networks.

    The training dataset only needs to give HR crops (``gt``), e.g. ``ReconImageDataset``; each sample of a batch
    draws its own degradation source, and validation uses the dataset's own ``lq``. The ``degradation`` and
    ``save_lq_every`` options and the behaviour are documented in
    :class:`undersr.models.undertrained_mixin.UndertrainedMixin`, shared with ``UndertrainedESRGANModel`` and
    ``UndertrainedSwinIRModel``.
    """
