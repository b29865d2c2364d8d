"""ReconImageDataset: folders, LMDB, small images, bad files."""
import logging
import os

import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.image_io import BadImageError

import cv2
import numpy as np
import pytest
from basicsr.data import build_dataset
from basicsr.utils.lmdb_util import make_lmdb_from_imgs


def dataset(root, **opt):
    return build_dataset(dict({'type': 'ReconImageDataset', 'name': 't', 'dataroot_gt': str(root), 'gt_size': 32,
                               'phase': 'train', 'io_backend': {'type': 'disk'}}, **opt))


@pytest.fixture
def nested(tmp_path, sample_pairs):
    """Tiny-ImageNet-like tree: two class folders with an images/ sub-folder each."""
    for cls, name in (('n01', 'astronaut'), ('n02', 'coffee')):
        (tmp_path / cls / 'images').mkdir(parents=True)
        image = cv2.imread(str(sample_pairs / 'gt' / f'{name}.png'))
        cv2.imwrite(str(tmp_path / cls / 'images' / f'{name}.JPEG'), image)
    return tmp_path


def test_folder_tree_crops_and_ranges(nested):
    data = dataset(nested)
    assert len(data) == 2
    item = data[0]
    assert item['gt'].shape == (3, 32, 32) and 0 <= item['gt'].min() and item['gt'].max() <= 1
    assert item['gt_path'].endswith(os.path.join('n01', 'images', 'astronaut.JPEG'))


def test_lmdb_gives_the_same_images(tmp_path, sample_pairs):
    names = sorted(os.listdir(sample_pairs / 'gt'))
    make_lmdb_from_imgs(str(sample_pairs / 'gt'), str(tmp_path / 'gt.lmdb'), names, [n[:-4] for n in names],
                        map_size=1 << 24)
    folder = dataset(sample_pairs / 'gt', phase='val')
    lmdb = dataset(tmp_path / 'gt.lmdb', phase='val', io_backend={'type': 'lmdb'})
    assert len(folder) == len(lmdb) == 3
    for i in range(3):
        assert np.array_equal(folder[i]['gt'].numpy(), lmdb[i]['gt'].numpy())


def test_small_image_is_resized_up_with_a_warning(tmp_path):
    cv2.imwrite(str(tmp_path / 'small.png'), np.full((10, 20, 3), 128, np.uint8))
    with pytest.warns(UserWarning, match='small.png is 10×20, smaller than gt_size 32'):
        item = dataset(tmp_path)[0]
    assert item['gt'].shape == (3, 32, 32)


def test_resize_option_feeds_paper_input_size(tmp_path):
    cv2.imwrite(str(tmp_path / 'tiny.png'), np.zeros((64, 64, 3), np.uint8))
    assert dataset(tmp_path, resize=96, gt_size=96)[0]['gt'].shape == (3, 96, 96)


def test_corrupt_file_raises_naming_it(tmp_path, nested):
    (nested / 'n01' / 'images' / 'broken.png').write_bytes(b'\x89PNG garbage')
    data = dataset(nested)
    index = [i for i in range(len(data)) if 'broken' in data.source.keys[i]][0]
    with pytest.raises(BadImageError, match='broken.png'):
        data[index]


def test_skip_bad_skips_and_counts(nested, caplog):
    (nested / 'n01' / 'images' / 'broken.png').write_bytes(b'')
    data = dataset(nested, skip_bad=True)
    index = [i for i in range(len(data)) if 'broken' in data.source.keys[i]][0]
    with caplog.at_level(logging.WARNING, logger='basicsr'):
        item = data[index]
    assert 'broken' not in item['gt_path'] and data.num_skipped == 1
    assert 'broken.png' in caplog.text and '1 skipped' in caplog.text


def test_grey_rgba_and_16_bit_are_converted_with_warnings(tmp_path):
    cv2.imwrite(str(tmp_path / 'a_grey.png'), np.full((40, 40), 200, np.uint8))
    cv2.imwrite(str(tmp_path / 'b_rgba.png'), np.full((40, 40, 4), 100, np.uint8))
    cv2.imwrite(str(tmp_path / 'c_16bit.png'), np.full((40, 40, 3), 65535, np.uint16))
    data = dataset(tmp_path)
    for i, note in enumerate(['grey repeated', 'alpha channel dropped', '16-bit scaled']):
        with pytest.warns(UserWarning, match=note):
            item = data[i]
        assert item['gt'].shape == (3, 32, 32)
    assert abs(item['gt'].max().item() - 1) < 1e-6
