"""NoisyPairedImageDataset: noise on a share of training LR crops only, at the σ asked for, saved-photo values."""
import os

import undersr  # noqa: F401  (registers with BasicSR)
from undersr.sample_data import load

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataset


@pytest.fixture
def pair_folders(tmp_path):
    """One 64² HR / 16² LR pair of a flat grey image, so the noise is the only texture in the LR."""
    for sub, size in (('gt', 64), ('lq', 16)):
        os.makedirs(tmp_path / sub)
        assert cv2.imwrite(str(tmp_path / sub / 'flat.png'), np.full((size, size, 3), 128, np.uint8))
    return tmp_path


def _dataset(root, phase='train', **noise):
    return build_dataset({'name': 'noisy', 'type': 'NoisyPairedImageDataset', 'phase': phase, 'scale': 4,
                          'dataroot_gt': str(root / 'gt'), 'dataroot_lq': str(root / 'lq'),
                          'io_backend': {'type': 'disk'}, 'gt_size': 64, 'use_hflip': False, 'use_rot': False,
                          **noise})


def _lq_values(dataset, draws):
    torch.manual_seed(0)
    return np.stack([dataset[0]['lq'].numpy() for _ in range(draws)])


def test_noise_has_the_requested_sigma_and_8_bit_values(pair_folders):
    lq = _lq_values(_dataset(pair_folders, noise_prob=1, noise_range=[8, 8]), draws=4)
    residual = lq * 255 - 128
    assert abs(residual.std() - 8) < 0.6
    assert np.allclose(lq * 255, np.round(lq * 255), atol=1e-4)
    assert not np.array_equal(lq[0], lq[1])  # fresh noise on every read


def test_noise_prob_sets_the_share_of_noisy_crops(pair_folders):
    lq = _lq_values(_dataset(pair_folders, noise_prob=0.5, noise_range=[4, 4]), draws=200)
    noisy = (np.abs(lq * 255 - 128) > 0.5).any(axis=(1, 2, 3))
    assert 0.35 < noisy.mean() < 0.65
    never = _lq_values(_dataset(pair_folders, noise_prob=0, noise_range=[4, 4]), draws=5)
    assert np.allclose(never * 255, 128, atol=1e-4)


def test_validation_pairs_are_read_as_they_are(pair_folders):
    lq = _lq_values(_dataset(pair_folders, phase='val', noise_prob=1, noise_range=[16, 16]), draws=3)
    assert np.allclose(lq * 255, 128, atol=1e-4)


@pytest.mark.parametrize('noise', [dict(noise_prob=1.5, noise_range=[0, 4]), dict(noise_prob=1, noise_range=[4, 2]),
                                   dict(noise_prob=1, noise_range=[-1, 2]), dict(noise_prob=1, noise_range=[4]),
                                   dict(noise_prob=1), dict(noise_range=[0, 4])])
def test_bad_noise_options_are_refused(pair_folders, noise):
    with pytest.raises(ValueError, match='NoisyPairedImageDataset: noise_'):
        _dataset(pair_folders, **noise)


def test_photo_crop_keeps_its_content_under_mild_noise(pair_folders):
    hr = cv2.cvtColor(load('astronaut')[:64, :64], cv2.COLOR_RGB2BGR)
    assert cv2.imwrite(str(pair_folders / 'gt' / 'flat.png'), hr)
    assert cv2.imwrite(str(pair_folders / 'lq' / 'flat.png'), cv2.resize(hr, (16, 16), interpolation=cv2.INTER_AREA))
    clean = _lq_values(_dataset(pair_folders, noise_prob=0, noise_range=[2, 2]), draws=1)[0]
    noisy = _lq_values(_dataset(pair_folders, noise_prob=1, noise_range=[2, 2]), draws=1)[0]
    assert 0 < np.abs(noisy - clean).mean() * 255 < 3
