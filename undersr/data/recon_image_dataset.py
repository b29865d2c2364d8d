"""Single images for training the reconstruction networks (paper §3.2: Tiny-ImageNet)."""
import logging
import random
import warnings

from undersr.data.image_source import ImageSource
from undersr.image_io import BadImageError, decode_image

import cv2
import torch.utils.data as data
from basicsr.data.transforms import augment
from basicsr.utils import img2tensor
from basicsr.utils.registry import DATASET_REGISTRY

logger = logging.getLogger('basicsr')


@DATASET_REGISTRY.register()
class ReconImageDataset(data.Dataset):
    """Random crops of images from a folder tree or an LMDB, for autoencoder-style training.

    Each item is ``{'gt': (3, gt_size, gt_size) float RGB in [0, 1], 'gt_path': str}``; at validation
    (``phase != 'train'``) the whole image.

    Args:
        opt (dict): ``dataroot_gt`` (folder tree or LMDB), optional ``meta_info``; ``gt_size`` (crop size);
            ``resize`` (optional: resize every image to this square size first; the paper fed 64² Tiny-ImageNet
            images to the 256² models this way); ``use_hflip``, ``use_rot``; ``skip_bad`` (skip unreadable
            images, default false: raise); ``phase``.
    """

    def __init__(self, opt):
        super().__init__()
        self.opt = opt
        self.source = ImageSource(opt['dataroot_gt'], opt.get('meta_info'))
        self.train = opt.get('phase', 'train') == 'train'
        self.skip_bad = opt.get('skip_bad', False)
        self.num_skipped = 0

    def __len__(self):
        return len(self.source)

    def _load(self, index):
        image = decode_image(self.source.read(index), self.source.name(index))
        if self.opt.get('resize'):
            size = self.opt['resize']
            image = cv2.resize(image, (size, size), interpolation=cv2.INTER_CUBIC if size > image.shape[0]
                               else cv2.INTER_AREA).clip(0, 1)
        return image

    def _crop(self, image, index):
        size = self.opt['gt_size']
        h, w = image.shape[:2]
        if min(h, w) < size:
            warnings.warn(f'{self.source.name(index)} is {h}×{w}, smaller than gt_size {size}: resized up')
            ratio = size / min(h, w)
            image = cv2.resize(image, (max(size, round(w * ratio)), max(size, round(h * ratio))),
                               interpolation=cv2.INTER_CUBIC).clip(0, 1)
            h, w = image.shape[:2]
        top, left = random.randint(0, h - size), random.randint(0, w - size)
        image = image[top:top + size, left:left + size]
        return augment(image, self.opt.get('use_hflip', True), self.opt.get('use_rot', False))

    def __getitem__(self, index):
        for _ in range(len(self)):
            try:
                image = self._load(index)
                break
            except BadImageError as err:
                if not self.skip_bad:
                    raise
                self.num_skipped += 1
                logger.warning(f'skip_bad: {err} ({self.num_skipped} skipped so far in this process)')
                index = (index + 1) % len(self)
        else:
            raise BadImageError(self.source.root, 'no readable image at all')
        if self.train:
            image = self._crop(image, index)
        return {'gt': img2tensor(image, bgr2rgb=True, float32=True), 'gt_path': self.source.name(index)}
