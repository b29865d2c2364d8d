"""HAT through ARCH_REGISTRY, and loading official checkpoints in every layout through BasicSR."""
import undersr  # noqa: F401  (registers with BasicSR; first: the torchvision shim)
from undersr.weights import load_weights

import pytest
import torch
from basicsr.archs import build_network
from basicsr.models.base_model import BaseModel

TINY_HAT = dict(type='HAT', in_chans=3, img_size=16, window_size=4, compress_ratio=2, squeeze_factor=4,
                conv_scale=0.01, overlap_ratio=0.5, img_range=1., depths=[1, 1], embed_dim=16, num_heads=[2, 2],
                mlp_ratio=2, upsampler='pixelshuffle', resi_connection='1conv')


@pytest.mark.parametrize('scale', [2, 4])
def test_hat_forward_shape_any_size(scale):
    net = build_network(dict(TINY_HAT, upscale=scale)).eval()
    with torch.no_grad():
        out = net(torch.rand(2, 3, 10, 13))  # not a multiple of window_size
    assert out.shape == (2, 3, 10 * scale, 13 * scale)


def test_hat_has_official_keys_and_strict_round_trip():
    net = build_network(dict(TINY_HAT, upscale=4))
    keys = set(net.state_dict())
    assert {'relative_position_index_SA', 'conv_first.weight', 'conv_last.weight',
            'layers.0.residual_group.overlap_attn.qkv.weight',
            'layers.0.residual_group.blocks.0.conv_block.cab.0.weight'} <= keys
    clone = build_network(dict(TINY_HAT, upscale=4))
    clone.load_state_dict(net.state_dict(), strict=True)
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(clone.eval()(x), net.eval()(x), rtol=0, atol=0)


def test_hat_rejects_unsupported_upsampler():
    with pytest.raises(ValueError, match='pixelshuffle'):
        build_network(dict(TINY_HAT, upsampler='pixelshuffledirect'))


def tiny_edsr():
    return build_network(dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=1, upscale=2))


class _Loader(BaseModel):
    """The smallest BaseModel that can call the (patched) ``load_network``."""

    def __init__(self):
        self.opt = {'dist': False, 'num_gpu': 0}


@pytest.mark.parametrize('layout', ['params_ema', 'params', 'top', 'module_prefix'])
def test_every_official_layout_loads_through_basicsr(tmp_path, layout):
    src = tiny_edsr()
    weights = src.state_dict()
    content = {
        'params_ema': {'params_ema': weights, 'params': {k: torch.zeros_like(v) for k, v in weights.items()}},
        'params': {'params': weights},
        'top': weights,
        'module_prefix': {'params': {f'module.{k}': v for k, v in weights.items()}},
    }[layout]
    path = tmp_path / 'w.pth'
    torch.save(content, path)
    dst = tiny_edsr()
    _Loader().load_network(dst, str(path), strict=True, param_key='params_ema')
    for k, v in dst.state_dict().items():
        assert torch.equal(v, weights[k]), k


def test_mismatched_checkpoint_names_file_network_and_keys(tmp_path):
    path = tmp_path / 'other.pth'
    torch.save({'params': build_network(dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=8, num_block=2,
                                             upscale=2)).state_dict()}, path)
    with pytest.raises(RuntimeError) as err:
        load_weights(tiny_edsr(), str(path))
    message = str(err.value)
    assert str(path) in message and 'EDSR' in message and 'body.1.conv1.weight' in message


def test_shape_mismatch_is_reported_even_when_not_strict(tmp_path):
    path = tmp_path / 'wide.pth'
    torch.save(build_network(dict(type='EDSR', num_in_ch=3, num_out_ch=3, num_feat=16, num_block=1,
                                  upscale=2)).state_dict(), path)
    with pytest.raises(RuntimeError, match='shape mismatch'):
        load_weights(tiny_edsr(), str(path), strict=False)


def test_missing_official_file_says_where_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match='XPixelGroup/HAT') as err:
        load_weights(tiny_edsr(), str(tmp_path / 'HAT_SRx4_ImageNet-pretrain.pth'))
    assert 'never downloads' in str(err.value)


def test_corrupt_file_is_named(tmp_path):
    path = tmp_path / 'broken.pth'
    path.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match='broken.pth'):
        load_weights(tiny_edsr(), str(path))
