"""undersr.color: Lab conversions against scikit-image, the lab-stats colour correction and CIEDE2000 ΔE (§4.3)."""
import warnings

from undersr.color import delta_e, lab_to_rgb, match_lab_stats, rgb_to_lab

import numpy as np
import pytest
import torch
from skimage import color, data

PRIMARIES = np.array([[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1], [1, 0, 1]])


def _crop(name, top, left, height=64, width=80):
    """A crop of a scikit-image photo as float64 (H, W, 3) in [0, 1]."""
    return getattr(data, name)()[top:top + height, left:left + width].astype(np.float64) / 255


@pytest.fixture(scope='module')
def rgb_images():
    """(2, 64, 80, 3) float64: an astronaut crop, and random colours whose first row holds black, white and
    the primaries and secondaries (the gamut corners, where conversions are most extreme)."""
    rng = np.random.default_rng(0)
    random = rng.random((64, 80, 3))
    random[0, :len(PRIMARIES)] = PRIMARIES
    return np.stack([_crop('astronaut', 60, 170), random])


def nchw(arr, dtype=torch.float32):
    """(N, H, W, 3) NumPy → (N, 3, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).to(dtype)


def nhwc(x):
    return x.permute(0, 2, 3, 1).double().numpy()


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_rgb_to_lab_matches_skimage(rgb_images, dtype):
    lab = rgb_to_lab(nchw(rgb_images, dtype))
    assert lab.dtype == dtype and lab.shape == (2, 3, 64, 80)
    expected = color.rgb2lab(rgb_images)
    assert np.abs(nhwc(lab) - expected).max() < 1e-3
    assert expected[..., 0].max() > 99 and np.abs(expected[..., 1:]).max() > 80  # the test covers the gamut


def test_lab_to_rgb_matches_skimage(rgb_images):
    rng = np.random.default_rng(1)
    # Lab of real colours, and arbitrary Lab values (many outside the sRGB gamut: clipping, negative f(Z))
    arbitrary = np.stack([rng.uniform(0, 100, (64, 80)), rng.uniform(-128, 127, (64, 80)),
                          rng.uniform(-128, 127, (64, 80))], axis=-1)
    lab = np.concatenate([color.rgb2lab(rgb_images), arbitrary[None]])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')  # skimage warns about the negative Z values
        expected = color.lab2rgb(lab)
    ours = nhwc(lab_to_rgb(nchw(lab)))
    assert np.abs(ours - expected).max() < 1e-4
    assert ours.min() >= 0 and ours.max() <= 1
    unclipped = lab_to_rgb(nchw(arbitrary[None]), clip=False)
    assert unclipped.min() < 0 and unclipped.max() > 1


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_round_trip(rgb_images, dtype):
    x = nchw(rgb_images, dtype)
    back = lab_to_rgb(rgb_to_lab(x))
    assert back.dtype == dtype
    assert (back - x).abs().max().item() < 1e-4


def test_conversions_are_differentiable_and_keep_device():
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    lab_to_rgb(rgb_to_lab(x), clip=False).sum().backward()
    assert torch.isfinite(x.grad).all() and (x.grad - 1).abs().max() < 1e-6  # d(identity) = 1
    meta = torch.empty(2, 3, 8, 8, device='meta')
    assert rgb_to_lab(meta).device == meta.device and match_lab_stats(meta, meta).device == meta.device


def test_rejects_wrong_shapes():
    with pytest.raises(ValueError, match=r'\(N, 3, H, W\)'):
        rgb_to_lab(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match='same shape'):
        match_lab_stats(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))
    with pytest.raises(ValueError, match='same size'):
        delta_e(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_delta_e_of_identical_images_is_zero(rgb_images):
    x = nchw(rgb_images)
    result = delta_e(x, x.clone())
    assert isinstance(result, np.ndarray) and result.shape == (2, )
    np.testing.assert_array_equal(result, 0)
    uint8 = (rgb_images[0] * 255).round().astype(np.uint8)
    assert delta_e(uint8, uint8) == 0.0


def test_delta_e_of_a_uniform_shift():
    first, second = (0.6, 0.4, 0.3), (0.65, 0.4, 0.25)  # a warm colour, shifted towards red and away from blue
    # the reference: skimage on one pixel pair
    expected = color.deltaE_ciede2000(color.rgb2lab(np.array([[first]])), color.rgb2lab(np.array([[second]])))
    expected = float(expected.squeeze())
    assert expected == pytest.approx(4.5255, abs=1e-3)  # pinned, so a change of convention shows up
    img1 = np.broadcast_to(np.array(first), (16, 20, 3))
    img2 = np.broadcast_to(np.array(second), (16, 20, 3))
    single = delta_e(img1, img2)  # NumPy (H, W, 3): a float
    assert isinstance(single, float) and single == pytest.approx(expected, rel=1e-9)
    # a batch of two, as torch (N, 3, H, W): the shifted pair and an identical pair
    batch1, batch2 = nchw(np.stack([img1, img1]), torch.float64), nchw(np.stack([img2, img1]), torch.float64)
    np.testing.assert_allclose(delta_e(batch1, batch2), [expected, 0.0], rtol=1e-9, atol=1e-12)
    # mixed kinds: a torch image (3, H, W) against a NumPy one
    assert delta_e(batch1[0], img2) == pytest.approx(expected, rel=1e-9)


def test_delta_e_uint8_equals_float():
    img = data.coffee()[150:182, 200:240]
    shifted = np.clip(img.astype(np.int32) + [12, 0, -6], 0, 255).astype(np.uint8)
    from_uint8 = delta_e(img, shifted)
    assert from_uint8 > 1
    assert from_uint8 == pytest.approx(delta_e(img / 255.0, shifted / 255.0), rel=1e-12)


def _tint(x):
    """+0.1 on R and -0.05 on B, clamped: a global colour shift like the one of §4.3."""
    return (x + torch.tensor([0.1, 0.0, -0.05], dtype=x.dtype).view(1, 3, 1, 1)).clamp(0, 1)


def test_match_lab_stats_removes_a_tint():
    clean = nchw(np.stack([_crop('astronaut', 60, 170), _crop('coffee', 150, 200)]))
    tinted = _tint(clean)
    before = delta_e(tinted, clean)
    corrected = match_lab_stats(tinted, clean)
    after = delta_e(corrected, clean)
    assert corrected.shape == clean.shape and corrected.dtype == clean.dtype
    assert corrected.min() >= 0 and corrected.max() <= 1
    assert np.all(before > 3), before
    assert np.all(after * 3 < before), (before, after)
    # the corrected Lab statistics are those of the reference (up to the final clamp)
    lab, lab_ref = rgb_to_lab(corrected), rgb_to_lab(clean)
    torch.testing.assert_close(lab.mean(dim=(2, 3)), lab_ref.mean(dim=(2, 3)), rtol=0, atol=0.5)
    torch.testing.assert_close(lab.std(dim=(2, 3)), lab_ref.std(dim=(2, 3)), rtol=0.05, atol=0.5)


def test_match_lab_stats_is_per_image():
    clean = nchw(np.stack([_crop('astronaut', 60, 170), _crop('coffee', 150, 200)]))
    degraded = torch.stack([_tint(clean[:1])[0], clean[1] * 0.8 + 0.1])
    batched = match_lab_stats(degraded, clean)
    for i in range(2):
        torch.testing.assert_close(batched[i:i + 1], match_lab_stats(degraded[i:i + 1], clean[i:i + 1]),
                                   rtol=0, atol=1e-5)


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_match_lab_stats_leaves_a_matching_image_alone(dtype):
    img = nchw(_crop('astronaut', 60, 170)[None], dtype)
    out = match_lab_stats(img, img.clone())
    assert out.dtype == dtype
    assert (out - img).abs().max().item() < 1e-4
    flat = torch.full((1, 3, 8, 8), 0.5, dtype=dtype)  # zero standard deviation: no division by zero
    torch.testing.assert_close(match_lab_stats(flat, flat), flat, rtol=0, atol=1e-4)
