"""undersr: undertrained image reconstruction as a realistic degradation for blind SR (arXiv 2503.02767).

``import undersr`` does what ``import hat`` and ``import realesrgan`` do: it registers our architectures, datasets,
models and the LPIPS metric with BasicSR's registries, so that ``build_network({'type': 'VQVAE2'})`` or
``model_type: UndertrainedSRModel`` work right after it. Before BasicSR is imported it installs the torchvision
shim that BasicSR 1.4.2 needs (:mod:`undersr.compat`); the fixes BasicSR needs on CPUs and current PyTorch are
applied on the way (:mod:`undersr.basicsr_fixes`).
"""
from undersr.compat import install_torchvision_shim

__version__ = '0.1.0'

install_torchvision_shim()

from undersr import archs, data, lpips_metric, models  # noqa: E402,F401  (fill BasicSR's registries)
