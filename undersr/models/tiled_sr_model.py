"""``TiledSRModel``: BasicSR's ``SRModel`` with test-time padding and tiling (:mod:`undersr.models.tiling`) and
the training speed options (:mod:`undersr.models.train_speed`)."""
from undersr.models.tiling import TiledTestMixin
from undersr.models.train_speed import TrainSpeedMixin

from basicsr.models.sr_model import SRModel
from basicsr.utils.registry import MODEL_REGISTRY


@MODEL_REGISTRY.register()
class TiledSRModel(TrainSpeedMixin, TiledTestMixin, SRModel):
    """``SRModel`` whose :meth:`test` pads to ``network_g.window_size`` and runs tile by tile (option ``tile``).

    .. code-block:: yaml

        model_type: TiledSRModel
        tile: {tile_size: 256, tile_pad: 16}   # LR pixels; omit or ~ to run whole images

    Training is ``SRModel``'s, with ``train.amp``, ``train.channels_last`` and ``train.compile``.
    """
