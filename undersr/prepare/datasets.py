"""Each dataset of the paper's experiments: how ``undersr prepare`` builds its layout, and how to verify it.

================  ==========================================================  =====================================
dataset           layout under ``--out`` (default ``datasets/``)              from
================  ==========================================================  =====================================
``df2k``          ``DF2K/HR/{0001..0800,000001..002650}.png``                 DIV2K_train_HR.zip + Flickr2K.tar
``tinyimagenet``  ``tiny-imagenet-200/train/<wnid>/images/*.JPEG`` and        tiny-imagenet-200.zip
                  ``tiny-imagenet-200/meta_info_train_subset<N>_seed<S>.txt``
``ntire2018``     ``NTIRE2018/DIV2K_valid_HR/0801.png``,                      DIV2K_valid_HR.zip +
                  ``NTIRE2018/DIV2K_valid_LR_difficult/0801x4d.png``, ...      DIV2K_valid_LR_difficult.zip
``set5`` ...      ``Set5/GTmod4/*.png`` (HR cropped to a multiple of 4),      the benchmark's HR images
                  ``Set5/LRbicx4/*.png`` (MATLAB bicubic x4); likewise
                  ``Set14``, ``B100``, ``Manga109``
``realsr``        ``RealSR_V3/{Canon,Nikon}/Test/4/*_HR.png`` + ``*_LR4.png``  the RealSR (V3) folder
``drealsr``       ``DRealSR/x4/Test_x4/test_HR/*_x1.png`` + ``test_LR/*_x4``  the DRealSR folder
``ntire2020``     ``NTIRE2020_Track2/LR/*.png`` (no ground truth)             the Track 2 test input
================  ==========================================================  =====================================

DF2K is merged, not cropped: the paper's ~20k 1024² crops (§4.1) are taken by ``undersr generate --crop 1024
--crops-per-image 6`` (3450 images × 6 = 20,700), whose crop positions come from a hash of (seed, image, crop
index). The same seed gives all 15 datasets the same HR crops, no 50 GB copy of crops is written, and the crop
boxes are recorded in each dataset's ``manifest.json`` (docs/reproduce.md explains the choice).

Official image counts are checked (``partial=True`` accepts fewer, e.g. for a miniature); :func:`verify` checks a
layout's structure only (present, non-empty, paired), which is what ``undersr prepare --check`` reports.
"""
import json
import os
import re
from dataclasses import dataclass
from os import path as osp

from undersr.data.image_source import list_folder
from undersr.fileio import atomic_path
from undersr.image_io import decode_image_noted, to_uint8
from undersr.prepare.files import Download, is_image_name
from undersr.prepare.sources import PrepareError, how_to_get
from undersr.progress import progress
from undersr.resize import bicubic_downsample

import cv2
import numpy as np

SCALE = 4
BENCHMARKS = {'set5': ('Set5', 5), 'set14': ('Set14', 14), 'b100': ('B100', 100), 'manga109': ('Manga109', 109)}
# Folders that hold the HR images of a benchmark download, most specific first (BasicSR's layout has GTmod12).
_HR_FOLDERS = ('gtmod12', 'gtmod4', 'hr', 'gt', 'original')
_LR_FOLDER = re.compile(r'^(lr.*|x\d+|.*bicx?\d.*|.*_lr.*)$', re.IGNORECASE)


def subset_name(count, seed):
    """File name of the Tiny-ImageNet subset's meta_info, e.g. ``meta_info_train_subset45000_seed0.txt``."""
    return f'meta_info_train_subset{count}_seed{seed}.txt'


@dataclass(frozen=True)
class Layout:
    """A dataset layout that options read.

    Attributes:
        key (str): ``undersr prepare`` subcommand, e.g. ``'df2k'``.
        root (str): Its folder under the datasets folder, e.g. ``'DF2K'``.
        sources (tuple[str]): Keys of :data:`undersr.prepare.sources.SOURCES`.
        command (str): The ``undersr prepare`` command that builds it.
    """
    key: str
    root: str
    sources: tuple
    command: str

    def how(self):
        """How to get it: the prepare command and the official downloads, one line."""
        if not self.sources:
            return self.command
        return f'{self.command}  (from {"; ".join(how_to_get(s) for s in self.sources)})'


LAYOUTS = {layout.key: layout for layout in (
    Layout('df2k', 'DF2K', ('div2k', 'flickr2k'),
           'undersr prepare df2k --div2k DIV2K_train_HR.zip --flickr2k Flickr2K.tar'),
    Layout('tinyimagenet', 'tiny-imagenet-200', ('tinyimagenet',),
           'undersr prepare tinyimagenet --src tiny-imagenet-200.zip --subset 45000 --seed 0'),
    Layout('ntire2018', 'NTIRE2018', ('ntire2018_hr', 'ntire2018_lr'),
           'undersr prepare ntire2018 --hr DIV2K_valid_HR.zip --lr DIV2K_valid_LR_difficult.zip'),
    *(Layout(key, folder, (key,), f'undersr prepare {key} --src {folder}.zip') for key, (folder, _) in
      BENCHMARKS.items()),
    Layout('realsr', 'RealSR_V3', ('realsr',), 'undersr prepare realsr --src "RealSR(V3)"'),
    Layout('drealsr', 'DRealSR', ('drealsr',), 'undersr prepare drealsr --src DRealSR'),
    Layout('ntire2020', 'NTIRE2020_Track2', ('ntire2020',), 'undersr prepare ntire2020 --src DPEDiphone-crop-te-x.zip'),
    Layout('sample', 'sample', (), 'python -m undersr.sample_data  (photos bundled with scikit-image, offline)'),
)}


def layout_of(path):
    """The :class:`Layout` a dataset path belongs to and its datasets folder (``datasets/DF2K/HR`` → the df2k
    layout, ``'datasets'``), or ``(None, None)``."""
    parts = osp.normpath(path).split(os.sep)
    for i, part in enumerate(parts):
        for layout in LAYOUTS.values():
            if part == layout.root and (i == 0 or parts[i - 1] == 'datasets'):
                return layout, os.sep.join(parts[:i]) or '.'
    return None, None


# ------------------------------------------------------------------------------------------------ selecting files

def _by_name(download, pattern, expected, what, partial):
    """Members whose base name matches ``pattern``, one per name, checked against the expected names.

    Returns:
        dict[str, str]: base name → member.
    """
    regex = re.compile(pattern)
    found = {}
    for member in download.members():
        name = member.rsplit('/', 1)[-1]
        if regex.fullmatch(name) and (expected is None or name in expected):
            if name in found:
                raise PrepareError(f'{download.path} holds two files named {name} ({found[name]} and {member}); '
                                   f'give the folder or archive of {how_to_get(download.source)} alone.')
            found[name] = member
    if not found:
        raise PrepareError(f'{download.path} has no {what}. Get {how_to_get(download.source)}.')
    missing = sorted(set(expected or ()) - set(found))
    if missing and not partial:
        raise PrepareError(f'{download.path} lacks {len(missing)} of the {len(expected)} {what}, e.g. {missing[0]}. '
                           f'Re-download {how_to_get(download.source)} (or pass --partial to use what is there).')
    return found


def _numbered(first, last, width, suffix='.png'):
    return {f'{i:0{width}d}{suffix}' for i in range(first, last + 1)}


# -------------------------------------------------------------------------------------------------------- datasets

def prepare_df2k(div2k, flickr2k, out='datasets', partial=False):
    """DIV2K's 800 training HR images and Flickr2K's 2650 merged into ``OUT/DF2K/HR`` (paper §4.1).

    Args:
        div2k (str): ``DIV2K_train_HR.zip`` or its folder.
        flickr2k (str): ``Flickr2K.tar`` or its folder (only ``Flickr2K_HR`` is used; LR files are ignored).
        out (str): Datasets folder.
        partial (bool): Accept fewer images than the official counts.

    Returns:
        str: The HR folder.
    """
    hr = osp.join(out, 'DF2K', 'HR')
    for path, source, pattern, expected, what in (
            (div2k, 'div2k', r'\d{4}\.png', _numbered(1, 800, 4), 'DIV2K training HR images (0001.png-0800.png)'),
            (flickr2k, 'flickr2k', r'\d{6}\.png', _numbered(1, 2650, 6),
             'Flickr2K HR images (000001.png-002650.png)')):
        download = Download(path, source)
        found = _by_name(download, pattern, expected, what, partial)
        download.extract({member: osp.join(hr, name) for name, member in found.items()}, desc=f'DF2K <- {source}')
    return hr


def prepare_tinyimagenet(src, out='datasets', subset=45000, seed=0, partial=False):
    """Tiny-ImageNet's training images, and the meta_info file of a class-balanced random subset (paper §3.2).

    Args:
        src (str): ``tiny-imagenet-200.zip`` or its folder.
        out (str): Datasets folder; images go to ``OUT/tiny-imagenet-200/train/<wnid>/images/``.
        subset (int | None): Images in the subset (the paper: about 45,000); ``None`` or 0: no subset file.
        seed (int): Seed of the subset.
        partial (bool): Accept fewer than 200 classes × 500 images.

    Returns:
        tuple[str, str | None]: The train folder and the subset's meta_info file.
    """
    download = Download(src, 'tinyimagenet')
    regex = re.compile(r'(?:.*/)?train/(n\d{8})/images/(n\d{8}_\d+\.JPEG)')
    train = osp.join(out, 'tiny-imagenet-200', 'train')
    mapping = {}
    for member in download.members():
        match = regex.fullmatch(member)
        if match:
            mapping[member] = osp.join(train, match[1], 'images', match[2])
    if not mapping:
        raise PrepareError(f'{src} has no train/<wnid>/images/*.JPEG files. Get {how_to_get("tinyimagenet")}.')
    if len(mapping) != 100000 and not partial:
        raise PrepareError(f'{src} has {len(mapping)} training images, not 100000. Re-download '
                           f'{how_to_get("tinyimagenet")} (or pass --partial to use what is there).')
    download.extract(mapping, desc='Tiny-ImageNet')
    meta = write_subset(train, subset, seed) if subset else None
    return train, meta


def write_subset(train, count, seed):
    """Writes the meta_info file of ``count`` training images, as balanced over classes as possible.

    Each class (top-level folder) is shuffled with ``seed``; images are then taken one per class in turn, classes
    in a shuffled order, until ``count`` are taken. 45,000 of Tiny-ImageNet's 200 × 500 gives 225 per class. Lines
    are keys relative to ``train`` (``ReconImageDataset``'s ``meta_info``), sorted.

    Returns:
        str: ``<train>/../meta_info_train_subset<count>_seed<seed>.txt``.

    Raises:
        PrepareError: fewer than ``count`` images.
    """
    keys = list_folder(train)
    if count > len(keys):
        raise PrepareError(f'--subset {count} is more than the {len(keys)} images under {train}')
    rng = np.random.default_rng(seed)
    classes = {}
    for key in keys:
        classes.setdefault(key.replace(os.sep, '/').split('/')[0], []).append(key)
    queues = [list(rng.permutation(members)) for _, members in sorted(classes.items())]
    queues = [queues[i] for i in rng.permutation(len(queues))]
    chosen = []
    while len(chosen) < count:
        for queue in queues:
            if queue and len(chosen) < count:
                chosen.append(queue.pop())
    path = osp.join(osp.dirname(osp.normpath(train)), subset_name(count, seed))
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        f.writelines(f'{key}\n' for key in sorted(chosen))
    return path


def prepare_ntire2018(hr, lr, out='datasets', partial=False):
    """NTIRE 2018 Track 3 (realistic difficult ×4): DIV2K's 100 validation HR images and their ``x4d`` LR.

    Returns:
        tuple[str, str]: The HR and LR folders (``test_*_ntire2018_track3.yml`` read them).
    """
    folders = osp.join(out, 'NTIRE2018', 'DIV2K_valid_HR'), osp.join(out, 'NTIRE2018', 'DIV2K_valid_LR_difficult')
    downloads = Download(hr, 'ntire2018_hr'), Download(lr, 'ntire2018_lr')
    found_hr = _by_name(downloads[0], r'\d{4}\.png', _numbered(801, 900, 4), 'DIV2K validation HR images '
                        '(0801.png-0900.png)', partial)
    found_lr = _by_name(downloads[1], r'\d{4}x4d\.png', _numbered(801, 900, 4, 'x4d.png'),
                        'realistic difficult x4 LR images (0801x4d.png-0900x4d.png)', partial)
    unpaired = sorted({n[:4] for n in found_hr} ^ {n[:4] for n in found_lr})
    if unpaired:
        raise PrepareError(f'NTIRE2018 Track 3: image {unpaired[0]} has an HR or an x4d LR file but not both '
                           f'({hr}, {lr}); the two archives must cover the same images.')
    for download, found, folder in zip(downloads, (found_hr, found_lr), folders):
        download.extract({m: osp.join(folder, n) for n, m in found.items()}, desc=osp.basename(folder))
    return folders


def _benchmark_hr_members(download):
    """The HR image members of a benchmark download (see :func:`prepare_benchmark`)."""
    images = [m for m in download.members() if is_image_name(m)]
    folders = {m: [p.lower() for p in m.split('/')[:-1]] for m in images}
    for name in _HR_FOLDERS:
        chosen = [m for m in images if name in folders[m]]
        if chosen:
            return chosen
    chosen = [m for m in images if re.search(r'_HR$', osp.splitext(m)[0])]
    return chosen or [m for m in images if not any(_LR_FOLDER.match(p) for p in folders[m])]


def prepare_benchmark(key, src, out='datasets', partial=False):
    """A bicubic benchmark (Set5, Set14, B100, Manga109) as BasicSR's ``GTmod4`` / ``LRbicx4`` pair folders.

    The HR images are taken from a ``GTmod12``, ``GTmod4``, ``HR``, ``GT`` or ``original`` folder of the download
    (the first that exists), else files named ``*_HR`` (the SelfExSR layout), else every image outside LR folders.
    Each is cropped at the bottom and right to a multiple of 4 (BasicSR's ``mod_crop``) and written to ``GTmod4``;
    its MATLAB-compatible bicubic ×4 (:func:`undersr.resize.bicubic_downsample`) to ``LRbicx4``. Grey images are
    made RGB.

    Args:
        key (str): ``'set5'``, ``'set14'``, ``'b100'`` or ``'manga109'``.
        src (str): Folder or archive with the HR images.

    Returns:
        tuple[str, str]: The GTmod4 and LRbicx4 folders.
    """
    folder, count = BENCHMARKS[key]
    download = Download(src, key)
    members = _benchmark_hr_members(download)
    if not members:
        raise PrepareError(f'{src} has no HR images of {folder}. Get {how_to_get(key)}.')
    if len(members) != count and not partial:
        raise PrepareError(f'{src} has {len(members)} HR images, {folder} has {count}. Get {how_to_get(key)} '
                           '(or pass --partial to use what is there).')
    gt_dir, lq_dir = osp.join(out, folder, 'GTmod4'), osp.join(out, folder, 'LRbicx4')
    for member in progress(members, desc=folder, unit='img'):
        stem = re.sub(r'(_SRF_\d+)?_HR$', '', osp.splitext(member.rsplit('/', 1)[-1])[0])
        gt_path, lq_path = osp.join(gt_dir, f'{stem}.png'), osp.join(lq_dir, f'{stem}.png')
        if osp.isfile(gt_path) and osp.isfile(lq_path):
            continue
        try:
            bgr, _ = decode_image_noted(download.read(member), f'{src}:{member}', keep_8bit=True)
        except ValueError as err:
            raise PrepareError(f'{err} Get {how_to_get(key)}.') from err
        if bgr.dtype != np.uint8:  # 16-bit
            bgr = to_uint8(bgr)
        h, w = bgr.shape[:2]
        hr = np.ascontiguousarray(bgr[:h - h % SCALE, :w - w % SCALE])
        for path, image in ((lq_path, bicubic_downsample(hr, SCALE)), (gt_path, hr)):
            _write_png(path, image)
    return gt_dir, lq_dir


def _write_png(path, bgr):
    ok, data = cv2.imencode('.png', bgr)
    if not ok:
        raise PrepareError(f'cannot encode {path}')
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, 'wb') as f:
        f.write(data.tobytes())


def _copy_matching(src, source, pattern, dest_of, what):
    """Copies the members of ``src`` whose path matches ``pattern`` to ``dest_of(match)``; returns how many."""
    download = Download(src, source)
    regex = re.compile(pattern)
    mapping = {m: dest_of(match) for m in download.members() for match in [regex.fullmatch(m)] if match}
    if not mapping:
        raise PrepareError(f'{src} has no {what}. Get {how_to_get(source)}.')
    download.extract(mapping, desc=source)
    return len(mapping)


def prepare_realsr(src=None, out='datasets'):
    """RealSR V3's ×4 test pairs into ``OUT/RealSR_V3/{Canon,Nikon}/Test/4`` (with ``src``), then verifies them."""
    root = osp.join(out, 'RealSR_V3')
    if src:
        _copy_matching(src, 'realsr', r'(?:.*/)?(Canon|Nikon)/Test/4/([^/]+_(?:HR|LR4)\.png)',
                       lambda m: osp.join(root, m[1], 'Test', '4', m[2]), 'Canon|Nikon/Test/4/*_HR.png files')
    return _raise_problems('realsr', verify('realsr', out), out)


def prepare_drealsr(src=None, out='datasets'):
    """DRealSR's ×4 test pairs into ``OUT/DRealSR/x4/Test_x4/{test_HR,test_LR}`` (with ``src``), then verifies."""
    root = osp.join(out, 'DRealSR', 'x4', 'Test_x4')
    if src:
        _copy_matching(src, 'drealsr', r'(?:.*/)?Test_x4/(test_HR|test_LR)/([^/]+\.png)',
                       lambda m: osp.join(root, m[1], m[2]), 'Test_x4/test_HR/*.png files')
    return _raise_problems('drealsr', verify('drealsr', out), out)


def prepare_ntire2020(src, out='datasets'):
    """NTIRE 2020 Track 2 test input (LR only) into ``OUT/NTIRE2020_Track2/LR``."""
    root = osp.join(out, 'NTIRE2020_Track2', 'LR')
    _copy_matching(src, 'ntire2020', r'(?:.*/)?([^/]+\.(?:png|PNG))', lambda m: osp.join(root, m[1]), 'PNG images')
    return root


def _raise_problems(key, problems, out):
    if problems:
        more = f' (and {len(problems) - 1} more problems)' if len(problems) > 1 else ''
        raise PrepareError(f'{problems[0]}{more}. Get it with: {LAYOUTS[key].how()}')
    return osp.join(out, LAYOUTS[key].root)


# ------------------------------------------------------------------------------------------------------ verifying

def _pairs(folder, gt_suffix, lq_folder, lq_suffix):
    """Problems of a paired folder: missing, empty, or an HR file without its LR partner."""
    if not osp.isdir(folder):
        return [f'{folder} is missing']
    stems = [n[:-len(gt_suffix)] for n in sorted(os.listdir(folder)) if n.endswith(gt_suffix)]
    if not stems:
        return [f'{folder} has no *{gt_suffix} files']
    return [f'{osp.join(folder, s + gt_suffix)} has no partner {osp.join(lq_folder, s + lq_suffix)}'
            for s in stems if not osp.isfile(osp.join(lq_folder, s + lq_suffix))]


def verify(key, out='datasets', subset_file=None):
    """Structural problems of a prepared layout (empty list: usable).

    Args:
        key (str): A key of :data:`LAYOUTS`.
        out (str): Datasets folder.
        subset_file (str | None): For ``tinyimagenet``: a meta_info file whose keys must all exist.

    Returns:
        list[str]: One message per problem, each naming a path.
    """
    root = osp.join(out, LAYOUTS[key].root)
    if key == 'df2k':
        folder = osp.join(root, 'HR')
        return [] if osp.isdir(folder) and any(is_image_name(n) for n in os.listdir(folder)) else \
            [f'{folder} has no images']
    if key == 'tinyimagenet':
        train = osp.join(root, 'train')
        if not osp.isdir(train) or not os.listdir(train):
            return [f'{train} is missing or empty']
        if subset_file:
            if not osp.isfile(subset_file):
                return [f'{subset_file} is missing']
            with open(subset_file) as f:
                absent = [k for k in (line.split()[0] for line in f if line.strip())
                          if not osp.isfile(osp.join(train, k))]
            return [f'{osp.join(train, absent[0])} (listed in {subset_file}) is missing'] if absent else []
        return []
    if key == 'ntire2018':
        hr, lr = osp.join(root, 'DIV2K_valid_HR'), osp.join(root, 'DIV2K_valid_LR_difficult')
        return _pairs(hr, '.png', lr, 'x4d.png')
    if key in BENCHMARKS:
        return _pairs(osp.join(root, 'GTmod4'), '.png', osp.join(root, 'LRbicx4'), '.png')
    if key == 'sample':
        return _pairs(osp.join(root, 'gt'), '.png', osp.join(root, 'lq'), '.png')
    if key == 'realsr':
        return [p for camera in ('Canon', 'Nikon') for folder in [osp.join(root, camera, 'Test', '4')]
                for p in _pairs(folder, '_HR.png', folder, '_LR4.png')]
    if key == 'drealsr':
        base = osp.join(root, 'x4', 'Test_x4')
        return _pairs(osp.join(base, 'test_HR'), '_x1.png', osp.join(base, 'test_LR'), '_x4.png')
    folder = osp.join(root, 'LR')
    return [] if osp.isdir(folder) and any(is_image_name(n) for n in os.listdir(folder)) else \
        [f'{folder} has no images']


def write_record(out, key, **details):
    """Records what ``undersr prepare KEY`` made in ``OUT/<root>/prepared.json`` (sources and arguments)."""
    path = osp.join(out, LAYOUTS[key].root, 'prepared.json')
    os.makedirs(osp.dirname(path), exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, 'w') as f:
        json.dump({'dataset': key, **details}, f, indent=1, sort_keys=True)
    return path
