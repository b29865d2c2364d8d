"""Degrader: the one implementation of HR → bicubic → undertrained reconstruction."""
from undersr.degrade import Degrader
from undersr.sample_data import load

import numpy as np
import pytest
import torch
from basicsr.utils.matlab_functions import imresize


def hr_batch(n=3, size=64):
    crops = [load(name)[:size, :size] for name in ('astronaut', 'coffee', 'chelsea', 'rocket')[:n]]
    return torch.stack([torch.from_numpy(c).permute(2, 0, 1).float() / 255 for c in crops])


def test_clean_lr_is_matlab_bicubic_and_shapes(tiny_recon):
    hr = hr_batch()
    out = Degrader([str(tiny_recon)], scale=4)(hr, seeds=[1, 2, 3])
    assert out['lq'].shape == out['lq_clean'].shape == (3, 3, 16, 16)
    reference = imresize(hr[0].permute(1, 2, 0).numpy(), 1 / 4)
    diff = np.abs(out['lq_clean'][0].permute(1, 2, 0).numpy() - reference.clip(0, 1)).max()
    assert diff <= 1 / 255


@pytest.fixture
def two_recons(tiny_recon, tiny_recon_b):
    """Two tiny VQ-VAE-2 checkpoints with different weights (so different outputs)."""
    return [str(tiny_recon), str(tiny_recon_b)]


def test_mixed_sources_each_sample_is_its_own_checkpoint_and_independent_of_the_batch(two_recons):
    degrader = Degrader(two_recons, weights=[1, 3], scale=4)
    hr = hr_batch(4)
    seeds = [7, 8, 9, 10]
    first = degrader(hr, seeds)
    assert sorted(set(first['source'].tolist())) == [0, 1], first['source']  # both sources occur
    again = degrader(hr, seeds)
    assert torch.equal(first['lq'], again['lq']) and torch.equal(first['source'], again['source'])

    singles = [Degrader([path], scale=4)(hr, seeds)['lq'] for path in two_recons]
    assert (singles[0] - singles[1]).abs().amax(dim=(1, 2, 3)).min() > 0.05  # other weights, other outputs
    for i, source in enumerate(first['source'].tolist()):
        torch.testing.assert_close(first['lq'][i], singles[source][i], atol=1e-5, rtol=0)
    alone = degrader(hr[1:2], seeds=[8])
    torch.testing.assert_close(alone['lq'][0], first['lq'][1], atol=1e-5, rtol=0)
    assert alone['source'][0] == first['source'][1]


def test_source_choice_follows_weights(two_recons):
    degrader = Degrader(two_recons, weights=[3, 1], scale=4)
    fraction = (degrader.choose(range(2000)) == 0).float().mean().item()
    assert abs(fraction - 0.75) < 0.04


def test_lab_stats_keeps_raw_output_apart(tiny_recon):
    out = Degrader([str(tiny_recon)], scale=4, color_correct='lab-stats')(hr_batch(1), seeds=[0])
    assert not torch.equal(out['lq'], out['lq_raw'])


def test_bad_checkpoints_are_named(tmp_path, tiny_recon):
    with pytest.raises(FileNotFoundError, match='missing.pth'):
        Degrader([str(tmp_path / 'missing.pth')])
    sr = tmp_path / 'edsr.pth'
    torch.save({'params': {'w': torch.zeros(1)}}, sr)
    with pytest.raises(ValueError, match='edsr.pth is not a reconstruction checkpoint'):
        Degrader([str(sr)])
    with pytest.raises(ValueError, match='weight per checkpoint'):
        Degrader([str(tiny_recon)], weights=[1, 2])


def test_scale_must_divide(tiny_recon):
    with pytest.raises(ValueError, match='divisible'):
        Degrader([str(tiny_recon)], scale=4)(torch.rand(1, 3, 30, 32), seeds=[0])


def test_strength_blends_each_sample_towards_its_clean_lr_by_its_own_seed(tiny_recon):
    hr, seeds = hr_batch(3), [4, 5, 6]
    full = Degrader([str(tiny_recon)], scale=4)(hr, seeds)
    degrader = Degrader([str(tiny_recon)], scale=4, strength=0.5)
    out = degrader(hr, seeds)
    s = degrader.blend_weights(seeds)
    assert ((s >= 0) & (s <= 0.5)).all() and len(set(s.tolist())) == 3
    expected = full['lq_clean'] + s.view(-1, 1, 1, 1) * (full['lq'] - full['lq_clean'])
    torch.testing.assert_close(out['lq'], expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(out['lq_raw'], full['lq'], atol=0, rtol=0)
    alone = degrader(hr[2:], seeds=[6])  # s comes from the seed, not the batch
    torch.testing.assert_close(alone['lq'][0], out['lq'][2], atol=1e-5, rtol=0)
    spread = degrader.blend_weights(range(2000))
    assert abs(spread.mean().item() - 0.25) < 0.01 and spread.max().item() > 0.49
    for bad in (0, 1.5, -0.2):
        with pytest.raises(ValueError, match='strength'):
            Degrader([str(tiny_recon)], strength=bad)
