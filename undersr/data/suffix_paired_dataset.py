"""``SuffixPairedImageDataset``: paired HR/LR folders whose file names differ by a suffix (RealSR, DRealSR).

BasicSR's ``PairedImageDataset`` pairs ``gt/NAME.ext`` with ``lq/<filename_tmpl.format(NAME)>.ext``, so the LR
name must be derived from the HR name by a template. Real-world benchmarks name both sides with their own suffix
instead, often in the same folder:

* RealSR v3: ``Canon_001_HR.png`` and ``Canon_001_LR4.png`` (``gt_suffix: _HR``, ``lq_suffix: _LR4``);
* DRealSR: ``test_HR/xxx_x1.png`` and ``test_LR/xxx_x4.png`` (``gt_suffix: _x1``, ``lq_suffix: _x4``).

This dataset lists ``dataroot_gt`` for names ending in ``gt_suffix`` and ``dataroot_lq`` for names ending in
``lq_suffix`` (before the extension; the two roots may be the same folder), strips the suffixes and pairs equal
stems. Anything else is ``PairedImageDataset`` (same options, crops, flips and ``lq_path`` / ``gt_path`` keys);
only the ``disk`` backend is supported.

.. code-block:: yaml

    type: SuffixPairedImageDataset
    dataroot_gt: datasets/RealSR_V3/Canon/Test/4
    dataroot_lq: datasets/RealSR_V3/Canon/Test/4
    gt_suffix: _HR
    lq_suffix: _LR4
    io_backend: {type: disk}
"""
import os
from os import path as osp

from undersr.image_io import IMAGE_EXTENSIONS

from basicsr.data.paired_image_dataset import PairedImageDataset
from basicsr.utils.registry import DATASET_REGISTRY
from torch.utils import data


def stems_with_suffix(folder, suffix):
    """Maps stem-without-suffix → file path for the images in ``folder`` whose stem ends with ``suffix``.

    Args:
        folder (str): Folder to list (not recursive).
        suffix (str): Required end of the file stem, e.g. ``'_HR'``; ``''`` takes every image.

    Returns:
        dict[str, str]: E.g. ``{'Canon_001': 'folder/Canon_001_HR.png'}``.

    Raises:
        ValueError: Two files (different extensions) give the same stem.
    """
    found = {}
    for name in sorted(os.listdir(folder)):
        stem, ext = osp.splitext(name)
        if ext.lower() not in IMAGE_EXTENSIONS or not stem.endswith(suffix) or len(stem) == len(suffix):
            continue
        key = stem[:len(stem) - len(suffix)] if suffix else stem
        if key in found:
            raise ValueError(f'{folder}: {osp.basename(found[key])} and {name} both pair as {key!r}')
        found[key] = osp.join(folder, name)
    return found


@DATASET_REGISTRY.register()
class SuffixPairedImageDataset(PairedImageDataset):
    """``PairedImageDataset`` that pairs files by stripping ``gt_suffix`` and ``lq_suffix`` from their stems.

    Args:
        opt (dict): ``PairedImageDataset``'s options (``dataroot_gt``, ``dataroot_lq``, ``io_backend``,
            ``phase``, ``scale``, ``gt_size``, ...) plus ``gt_suffix`` and ``lq_suffix`` (default ``''``).
            ``strict`` (default true): an image on one side without a partner is an error; with ``false`` it
            is ignored.
    """

    def __init__(self, opt):
        data.Dataset.__init__(self)
        self.opt = opt
        self.file_client = None
        self.io_backend_opt = opt['io_backend']
        if self.io_backend_opt['type'] != 'disk':
            raise ValueError(f"SuffixPairedImageDataset reads folders only (io_backend type 'disk'), got "
                             f"{self.io_backend_opt['type']!r}")
        self.mean = opt.get('mean')
        self.std = opt.get('std')
        self.gt_folder, self.lq_folder = opt['dataroot_gt'], opt['dataroot_lq']
        for role, folder in (('dataroot_gt', self.gt_folder), ('dataroot_lq', self.lq_folder)):
            if not osp.isdir(folder):
                raise FileNotFoundError(f'SuffixPairedImageDataset: {role} {folder} is not a folder')
        gt_suffix, lq_suffix = opt.get('gt_suffix', ''), opt.get('lq_suffix', '')
        gts = stems_with_suffix(self.gt_folder, gt_suffix)
        lqs = stems_with_suffix(self.lq_folder, lq_suffix)
        if gt_suffix == lq_suffix and self.gt_folder == self.lq_folder:
            raise ValueError('SuffixPairedImageDataset: gt and lq share folder and suffix; set gt_suffix/lq_suffix')
        unpaired = sorted(set(gts) ^ set(lqs))
        if unpaired and opt.get('strict', True):
            raise ValueError(f'SuffixPairedImageDataset: {len(unpaired)} images without a partner, e.g. '
                             f'{unpaired[:3]} (gt: {self.gt_folder}/*{gt_suffix}.*, lq: {self.lq_folder}/*'
                             f'{lq_suffix}.*); set strict: false to ignore them')
        self.paths = [{'lq_path': lqs[key], 'gt_path': gts[key]} for key in sorted(set(gts) & set(lqs))]
        if not self.paths:
            raise FileNotFoundError(f'SuffixPairedImageDataset: no pairs *{gt_suffix}.* in {self.gt_folder} and '
                                    f'*{lq_suffix}.* in {self.lq_folder}')
