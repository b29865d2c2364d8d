"""Preflight: every input an option file names, checked before BasicSR builds anything.

``python train.py -opt X.yml`` and ``python test.py -opt X.yml`` call :func:`main` first. When an input is missing it
prints one line per missing input (the option key, the path, and what makes it) and exits with status 2: no
experiment or results folder is created or renamed, no network is built. ``--check`` prints every input, present or
not, and exits (0 when all are present, 2 otherwise), so a GPU job can be prepared on a laptop.

What is checked (see docs/preflight.md for the lines it prints):

==========================================  ===================================================================
option                                      what makes it (``Finding.how``)
==========================================  ===================================================================
``datasets.*.dataroot_gt``/``_lq``          ``undersr generate ...`` for ``datasets/undersr/<name>``; the README
(folders; LMDBs with ``meta_info.txt``)     step or the official source for the other datasets (:data:`DATASETS`)
``datasets.*.meta_info_file``/``meta_info`` as the dataset it belongs to
``path.pretrain_network_*``                 the official project (``undersr.weights.OFFICIAL_WEIGHTS``), or the
``degradation.recon``                       ``python train.py -opt ...`` whose experiment writes the file
``path.resume_state``                       ``--auto_resume``, or a ``.state`` file of the experiment
``train.*_opt`` of type ``PerceptualLoss``  torchvision's ``vgg19-dcbb9e9d.pth`` at BasicSR's ``VGG_PRETRAIN_PATH``
``val.metrics.*`` ``calculate_lpips``       its torchvision backbone; a warning only: LPIPS reports ``nan`` without
==========================================  ===================================================================

Unknown keys in the blocks undersr defines are errors that name the nearest valid key: ``degradation``
(:class:`~undersr.degrade.Degrader` arguments), ``tile`` (:data:`~undersr.models.tiling.TILE_OPTIONS`) and the
options of a reconstruction network (its constructor's arguments). So are ``type`` names that no BasicSR registry
holds (``model_type``, ``network_*``, datasets, losses, metrics): BasicSR would fail on them only after making the
experiment folder.

Relative paths are resolved as BasicSR resolves them, against the working directory (``root``), with ``~``
expanded; ``experiments/<name>`` of ``--auto_resume`` lives under BasicSR's ``root_path`` (the folder of
``train.py``).

Modules: :mod:`~undersr.preflight.checks` (:func:`check`, :class:`Finding`), :mod:`~undersr.preflight.hints` (what
makes each input; add a dataset's source to :data:`DATASETS` there), :mod:`~undersr.preflight.cli` (:func:`main`).
"""
from undersr.preflight.checks import Finding, check, check_file, format_findings, load_options
from undersr.preflight.cli import build_parser, main
from undersr.preflight.hints import DATASETS, data_how, weights_how

__all__ = ['Finding', 'check', 'check_file', 'format_findings', 'load_options', 'main', 'build_parser', 'DATASETS',
           'data_how', 'weights_how']
