"""``undersr upscale``: apply SR models to real photos, and compare models side by side without ground truth.

- :mod:`undersr.upscale.engine`: loading a checkpoint (ours with its option file, or any release spandrel knows)
  as an :class:`~undersr.upscale.engine.Upscaler`; inference with test-time tiling.
- :mod:`undersr.upscale.images`: finding photos, reading and writing them in their own mode (grey, alpha, 16 bit).
- :mod:`undersr.upscale.runner`: the resumable run over a folder, :func:`upscale` and :func:`compare_models`.
- :mod:`undersr.upscale.compare`: the comparison page (``index.html``) and ``grid.png``.

Example:
    .. code-block:: python

        from undersr.upscale import compare_models
        page = compare_models(['photos/'], {'pre-trained': 'models/sr_pretrained.pth',
                                            'fine-tuned': 'models/sr_finetuned.pth'}, 'up/')
        # up/bicubic/, up/pre-trained/, up/fine-tuned/, up/compare/index.html, up/compare/grid.png
"""
from undersr.upscale.engine import Bicubic, Upscaler, load_upscaler
from undersr.upscale.runner import UpscaleResult, compare_models, upscale

__all__ = ['Bicubic', 'Upscaler', 'UpscaleResult', 'compare_models', 'load_upscaler', 'upscale']
