"""A miniature of every official download, made from the photos bundled with scikit-image, and prepared.

``undersr reproduce --tiny`` and the tests run the real ``undersr prepare`` code on these: each download has the
official archive type and layout (``DIV2K_train_HR.zip`` with ``DIV2K_train_HR/0001.png``, ``Flickr2K.tar`` with
``Flickr2K/Flickr2K_HR/000001.png`` beside an LR folder that must be ignored, ``tiny-imagenet-200.zip`` with
``train/<wnid>/images/*.JPEG`` beside ``val/``, ...), only with a few small images. Nothing is downloaded.
"""
import io
import os
import tarfile
import zipfile
from os import path as osp

from undersr.prepare import datasets
from undersr.resize import bicubic_downsample
from undersr.sample_data import center_crop, load

import cv2
import numpy as np

PHOTOS = ('astronaut', 'coffee', 'chelsea', 'rocket')


class _Photos:
    """Square patches of the bundled photos: patch ``i`` of size ``s`` is deterministic."""

    def __init__(self):
        self._photos = [center_crop(load(name), 300) for name in PHOTOS]

    def bgr(self, i, size):
        photo = self._photos[i % len(self._photos)]
        offset = (i // len(self._photos)) * 17 % 64  # other patches of the same photo for larger i
        patch = cv2.resize(photo[offset:offset + 236, offset:offset + 236], (size, size), interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(patch[..., ::-1])


def _encode(bgr, ext='.png'):
    ok, data = cv2.imencode(ext, bgr)
    if not ok:
        raise RuntimeError(f'OpenCV cannot encode {ext}')
    return data.tobytes()


def _zip(path, files):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with zipfile.ZipFile(path, 'w') as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _tar(path, files):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with tarfile.open(path, 'w') as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def _folder(root, files):
    for name, data in files.items():
        path = osp.join(root, name)
        os.makedirs(osp.dirname(path), exist_ok=True)
        with open(path, 'wb') as f:
            f.write(data)
    return root


def write_downloads(folder, hr_size=128, test_size=64):
    """Writes a miniature of every official download into ``folder``.

    Args:
        folder (str): Destination.
        hr_size (int): Side of the DF2K images.
        test_size (int): Side of the HR test and validation images (a multiple of 4).

    Returns:
        dict[str, str | tuple]: The arguments of each ``prepare_*`` function: ``df2k`` → (div2k, flickr2k),
        ``tinyimagenet``, ``ntire2018`` → (hr, lr), ``set5``, ``set14``, ``b100``, ``manga109``, ``realsr``,
        ``drealsr``, ``ntire2020``.
    """
    photos = _Photos()

    def pair(i, size=test_size, blur=False):
        hr = photos.bgr(i, size)
        source = hr[:size - size % 4, :size - size % 4]
        lr = bicubic_downsample(cv2.GaussianBlur(source, (0, 0), 1.0) if blur else source, 4)
        return _encode(hr), _encode(lr)

    out = {'df2k': (
        _zip(osp.join(folder, 'DIV2K_train_HR.zip'), {f'DIV2K_train_HR/{i:04d}.png': _encode(photos.bgr(i, hr_size))
                                                      for i in (1, 2)}),
        _tar(osp.join(folder, 'Flickr2K.tar'), {
            'Flickr2K/Flickr2K_HR/000001.png': _encode(photos.bgr(3, hr_size)),
            'Flickr2K/Flickr2K_LR_bicubic/X4/000001x4.png': _encode(photos.bgr(3, hr_size // 4))}))}
    tiny = {'tiny-imagenet-200/wnids.txt': b'n00000001\nn00000002\n',
            'tiny-imagenet-200/val/images/val_0.JPEG': _encode(photos.bgr(0, 64), '.jpg')}
    for c in (1, 2):
        for j in range(4):
            tiny[f'tiny-imagenet-200/train/n0000000{c}/images/n0000000{c}_{j}.JPEG'] = \
                _encode(photos.bgr(4 * c + j, 64), '.jpg')
    out['tinyimagenet'] = _zip(osp.join(folder, 'tiny-imagenet-200.zip'), tiny)
    hr_files, lr_files = {}, {}
    for i, n in enumerate((801, 802)):
        hr_files[f'DIV2K_valid_HR/{n:04d}.png'], lr_files[f'DIV2K_valid_LR_difficult/{n:04d}x4d.png'] = \
            pair(i, blur=True)
    out['ntire2018'] = (_zip(osp.join(folder, 'DIV2K_valid_HR.zip'), hr_files),
                        _zip(osp.join(folder, 'DIV2K_valid_LR_difficult.zip'), lr_files))
    for k, (key, (name, _)) in enumerate(datasets.BENCHMARKS.items()):
        files = {}  # BasicSR's layout: GTmod12 HR beside LR folders that prepare must ignore
        for i in range(2):
            hr, lr = pair(10 * k + i, size=test_size + 3)  # not a multiple of 4: prepare crops
            files[f'{name}/GTmod12/img{i}.png'], files[f'{name}/LRbicx4/img{i}.png'] = hr, lr
        out[key] = _zip(osp.join(folder, f'{name}.zip'), files)
    realsr = {}
    for camera in ('Canon', 'Nikon'):
        hr, lr = pair(5 if camera == 'Canon' else 6, blur=True)
        realsr[f'{camera}/Test/4/{camera}_001_HR.png'], realsr[f'{camera}/Test/4/{camera}_001_LR4.png'] = hr, lr
    out['realsr'] = _folder(osp.join(folder, 'RealSR(V3)'), realsr)
    hr, lr = pair(7, blur=True)
    out['drealsr'] = _folder(osp.join(folder, 'DRealSR'), {'x4/Test_x4/test_HR/img_1_x1.png': hr,
                                                           'x4/Test_x4/test_LR/img_1_x4.png': lr})
    out['ntire2020'] = _zip(osp.join(folder, 'DPEDiphone-crop-te-x.zip'),
                            {f'DPEDiphone-crop-te-x/{i:04d}.png': _encode(photos.bgr(i, test_size // 4))
                             for i in (1, 2)})
    return out


def prepare_all(downloads, out, subset=6, seed=0):
    """Runs every ``prepare_*`` function on :func:`write_downloads`' miniature (``partial``: few images).

    Returns:
        str: The subset's meta_info file of Tiny-ImageNet.
    """
    datasets.prepare_df2k(*downloads['df2k'], out=out, partial=True)
    _, meta = datasets.prepare_tinyimagenet(downloads['tinyimagenet'], out=out, subset=subset, seed=seed,
                                            partial=True)
    datasets.prepare_ntire2018(*downloads['ntire2018'], out=out, partial=True)
    for key in datasets.BENCHMARKS:
        datasets.prepare_benchmark(key, downloads[key], out=out, partial=True)
    datasets.prepare_realsr(downloads['realsr'], out=out)
    datasets.prepare_drealsr(downloads['drealsr'], out=out)
    datasets.prepare_ntire2020(downloads['ntire2020'], out=out)
    return meta
