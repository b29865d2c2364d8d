"""undersr.resize against BasicSR's NumPy MATLAB-imresize port, the reference the SR community uses."""
import os
import re

from undersr.resize import _weight_matrix, bicubic_downsample, imresize

import numpy as np
import pytest
import torch
from basicsr.utils.matlab_functions import imresize as numpy_imresize  # conftest imports undersr (shim) first
from skimage import data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _crop(name, top, left, height=96, width=120):
    """A crop of a scikit-image photo as float32 (H, W, 3) in [0, 1]."""
    return getattr(data, name)()[top:top + height, left:left + width].astype(np.float32) / 255


@pytest.fixture(scope='module')
def photos():
    return {'astronaut': _crop('astronaut', 60, 170), 'coffee': _crop('coffee', 150, 200)}


def to_tensor(img):
    """(H, W, C) NumPy → (C, H, W) tensor."""
    return torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))


def to_uint8(img):
    return np.clip(np.round(img * 255), 0, 255).astype(np.int32)


@pytest.mark.parametrize('scale', [1 / 4, 1 / 2, 1 / 3, 2])
@pytest.mark.parametrize('name', ['astronaut', 'coffee'])
def test_matches_numpy_imresize(photos, name, scale):
    img = photos[name]
    expected = numpy_imresize(img, scale)  # (h, w, 3)
    ours = imresize(to_tensor(img)[None], scale)[0].numpy().transpose(1, 2, 0)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() < 1e-4
    assert np.abs(to_uint8(ours) - to_uint8(expected)).max() <= 1


def test_batch_equals_single_images(photos):
    rng = np.random.default_rng(0)
    images = [photos['astronaut'], photos['coffee'], rng.random((96, 120, 3), dtype=np.float32)]
    batch = torch.stack([to_tensor(img) for img in images])  # (3, 3, 96, 120)
    batched = imresize(batch, 1 / 4)
    assert batched.shape == (3, 3, 24, 30)
    for i, img in enumerate(images):
        single = imresize(to_tensor(img), 1 / 4)  # (C, H, W) input
        assert single.shape == (3, 24, 30)
        torch.testing.assert_close(batched[i], single, rtol=0, atol=1e-6)
    # the images differ, so a mix-up between batch entries would show
    assert not torch.allclose(batched[0], batched[1], atol=1e-2)


@pytest.mark.parametrize('scale', [1 / 2, 1 / 4, 2])
def test_odd_sizes(scale):
    img = np.random.default_rng(1).random((61, 67, 3), dtype=np.float32)
    expected = numpy_imresize(img, scale)
    ours = imresize(to_tensor(img), scale).numpy().transpose(1, 2, 0)
    assert ours.shape == expected.shape  # ceil: 61 × 67 at 1/2 → 31 × 34
    assert np.abs(ours - expected).max() < 1e-4


@pytest.mark.parametrize('scale', [1 / 4, 1 / 3, 3])
def test_tiny_images_keep_constants(scale):
    """Kernels wider than the image mirror more than once; rows of weights must still sum to one."""
    x = torch.full((1, 2, 3, 5), 0.25)
    y = imresize(x, scale)
    assert y.shape[-2:] == (int(np.ceil(3 * scale)), int(np.ceil(5 * scale)))
    torch.testing.assert_close(y, torch.full_like(y, 0.25), rtol=0, atol=1e-6)


def test_any_range_is_linear(photos):
    x = to_tensor(photos['coffee'])[None]
    torch.testing.assert_close(imresize(255 * x - 100, 1 / 3), 255 * imresize(x, 1 / 3) - 100, rtol=0, atol=1e-3)


@pytest.mark.parametrize('dtype', [torch.float64, torch.float32, torch.float16, torch.bfloat16])
def test_dtype_preserved(photos, dtype):
    img = photos['astronaut']
    y = imresize(to_tensor(img).to(dtype)[None], 1 / 4)
    assert y.dtype == dtype and y.device == torch.device('cpu')
    tolerance = {torch.float64: 1e-6, torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 1e-2}[dtype]
    assert np.abs(y[0].double().numpy().transpose(1, 2, 0) - numpy_imresize(img, 1 / 4)).max() < tolerance


def test_device_preserved_meta():
    x = torch.empty(2, 3, 64, 48, device='meta')
    y = imresize(x, 1 / 4)
    assert y.device == x.device and y.shape == (2, 3, 16, 12) and y.dtype == x.dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs a GPU')
def test_cuda_matches_cpu(photos):
    x = torch.stack([to_tensor(photos['astronaut']), to_tensor(photos['coffee'])])
    y = imresize(x.to('cuda'), 1 / 4)
    assert y.is_cuda
    torch.testing.assert_close(y.cpu(), imresize(x, 1 / 4), rtol=0, atol=1e-5)


def test_weight_matrices_are_cached():
    x = torch.rand(1, 1, 40, 36)
    imresize(x, 1 / 4)
    hits = _weight_matrix.cache_info().hits
    imresize(x, 1 / 4)
    assert _weight_matrix.cache_info().hits == hits + 2  # one matrix per axis


def test_rejects_integer_tensors_and_bad_scales():
    with pytest.raises(TypeError, match='floating-point'):
        imresize(torch.zeros(1, 3, 8, 8, dtype=torch.uint8), 1 / 2)
    with pytest.raises(ValueError, match='positive'):
        imresize(torch.zeros(1, 3, 8, 8), 0)


def test_bicubic_downsample(photos):
    x = torch.stack([to_tensor(photos['astronaut']), to_tensor(photos['coffee'])])  # (2, 3, 96, 120)
    lr = bicubic_downsample(x, 4)
    assert lr.shape == (2, 3, 24, 30)
    torch.testing.assert_close(lr, imresize(x, 1 / 4), rtol=0, atol=0)
    assert np.abs(lr[1].numpy().transpose(1, 2, 0) - numpy_imresize(photos['coffee'], 1 / 4)).max() < 1e-4


def test_bicubic_downsample_divisibility():
    with pytest.raises(ValueError, match=r'65×64.*scale 4'):
        bicubic_downsample(torch.zeros(1, 3, 65, 64), 4)
    with pytest.raises(ValueError, match=r'64×66'):
        bicubic_downsample(torch.zeros(3, 64, 66), 4)
    with pytest.raises(ValueError, match='positive integer'):
        bicubic_downsample(torch.zeros(1, 3, 64, 64), 2.5)


def test_benchmark_smoke(run_py):
    proc = run_py(['benchmarks/bench_resize.py', '--smoke'], cwd=ROOT, timeout=120)
    assert 'speed-up' in proc.stdout and 'cpu:' in proc.stdout
    max_diff = float(re.search(r'max \|torch - numpy\|: (\S+)', proc.stdout).group(1))
    assert max_diff < 1e-4
